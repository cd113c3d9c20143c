"""The settings for operating the stack: smoke check, pause, alerts and budget (pure)."""

from __future__ import annotations

import pytest

from tests.test_config import make, problems_of

CHANNEL = "projects/my-a4-project/notificationChannels/1234567"


def test_defaults_check_and_watch_but_neither_alert_nor_budget():
    cfg = make()
    assert cfg.smoke_check_enabled is True and cfg.paused is False
    assert cfg.alert_notification_channels == () and cfg.alert_not_ready_minutes == 15
    assert cfg.billing_account == "" and cfg.budget_monthly_amount == 0
    assert cfg.budget_alert_percents == ("50", "90", "100")


def test_valid_operations_settings_are_accepted():
    cfg = make(
        paused="true",
        alertNotificationChannels=f'["{CHANNEL}"]',
        alertNotReadyMinutes="45",
        billingAccount="012345-6789AB-CDEF01",
        budgetMonthlyAmount="30000",
        budgetAlertPercents='["80", "120"]',
    )
    assert cfg.paused is True and cfg.alert_notification_channels == (CHANNEL,)
    assert cfg.budget_monthly_amount == 30000 and cfg.budget_alert_percents == ("80", "120")


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"alertNotificationChannels": '["1234567"]'}, "alertNotificationChannels", "projects/<project>/notificationChannels/<numeric id>"),
        ({"alertNotificationChannels": f'["{CHANNEL}/x"]'}, "alertNotificationChannels", "gcloud beta monitoring channels list"),
        ({"alertNotReadyMinutes": "0"}, "alertNotReadyMinutes", "expected 1 to 1440"),
        ({"billingAccount": "0123456789ABCDEF01"}, "billingAccount", "like 012345-6789AB-CDEF01"),
        ({"billingAccount": "012345-6789AB-CDEF01"}, "budgetMonthlyAmount", "required with billingAccount"),
        ({"budgetMonthlyAmount": "100"}, "budgetMonthlyAmount", "only used with billingAccount"),
        ({"budgetAlertPercents": '["90%"]'}, "budgetAlertPercents", "whole percents from 1 to 1000"),
        ({"budgetAlertPercents": '["0"]'}, "budgetAlertPercents", "whole percents from 1 to 1000"),
        ({"paused": "maybe"}, "paused", "expected true or false"),
    ],
)  # fmt: skip
def test_bad_operations_settings_are_refused_with_the_key_and_what_is_allowed(changes, key, words):
    problems = problems_of(**changes)
    assert any(p.startswith(f"{key}:") and words in p for p in problems), problems
