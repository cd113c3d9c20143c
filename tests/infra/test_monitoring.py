"""The dashboard, the alert policies and the budget, under mocks.

The dashboard JSON and the alert policies are checked field by field against
the Monitoring API's own discovery documents (monitoring v1 for dashboards, v3
for alert policies), which ship inside google-api-python-client
(requirements-dev.txt). Every metric they name must be one the platform or
the server exports: the lists below are the documented names, with where each
is documented.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from infra import monitoring
from tests.conftest import plan_of

DASHBOARD = "gcp:monitoring/dashboard:Dashboard"
ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
BUDGET = "gcp:billing/budget:Budget"
CHANNEL = "projects/my-a4-project/notificationChannels/1234567"

# Documented metric names, and where each is documented.
EXPORTED = {
    # NVIDIA/dcgm-exporter etc/default-counters.csv; GKE's managed DCGM package.
    "DCGM_FI_DEV_GPU_UTIL": "dcgm",
    "DCGM_FI_DEV_FB_USED": "dcgm",
    "DCGM_FI_DEV_POWER_USAGE": "dcgm",
    "DCGM_FI_DEV_XID_ERRORS": "dcgm",
    # TensorRT-LLM tensorrt_llm/metrics/collector.py (MetricsCollector docstring).
    "trtllm_request_success_total": "trtllm",
    "trtllm_num_requests_waiting": "trtllm",
    "trtllm_num_requests_running": "trtllm",
    "trtllm_time_to_first_token_seconds": "trtllm",
    "trtllm_time_per_output_token_seconds": "trtllm",
    "trtllm_kv_cache_utilization": "trtllm",
    # GKE kube state metrics (Deployment metrics).
    "kube_deployment_spec_replicas": "ksm",
    "kube_deployment_status_replicas_available": "ksm",
}
GKE_SYSTEM_METRICS = {"kubernetes.io/container/restart_count"}


def discovery(api: str) -> dict:
    spec = importlib.util.find_spec("googleapiclient")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(
            "google-api-python-client is not installed (pip install -r requirements-dev.txt)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    return json.loads((folder / "discovery_cache" / "documents" / f"{api}.json").read_text())


def schema_errors(schemas: dict, schema: dict, value, path: str) -> list[str]:
    """Every field of `value` that `schema` does not define, or of the wrong kind."""
    if "$ref" in schema:
        return schema_errors(schemas, schemas[schema["$ref"]], value, path)
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {value!r}"]
        errors = []
        for key, sub in value.items():
            if key in schema.get("properties", {}):
                errors += schema_errors(schemas, schema["properties"][key], sub, f"{path}.{key}")
            elif "additionalProperties" in schema:
                errors += schema_errors(
                    schemas, schema["additionalProperties"], sub, f"{path}.{key}"
                )
            else:
                errors.append(f"{path}.{key}: not a field of {schema.get('id', 'this object')}")
        return errors
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [
            e
            for i, v in enumerate(value)
            for e in schema_errors(schemas, schema["items"], v, f"{path}[{i}]")
        ]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} is not one of {schema['enum']}"]
    if kind == "string" and not isinstance(value, str):
        return [f"{path}: expected a string, got {value!r}"]
    if kind == "integer" and not (isinstance(value, int) or str(value).isdigit()):
        return [f"{path}: expected an integer, got {value!r}"]
    if kind == "number" and not isinstance(value, (int, float)):
        return [f"{path}: expected a number, got {value!r}"]
    if kind == "boolean" and not isinstance(value, bool):
        return [f"{path}: expected true or false, got {value!r}"]
    return []


def validate(api: str, schema_name: str, value) -> list[str]:
    schemas = discovery(api)["schemas"]
    return schema_errors(schemas, schemas[schema_name], value, schema_name)


def dashboard_of(plan) -> dict:
    return json.loads(plan.one(DASHBOARD).inputs["dashboardJson"])


def widgets(board: dict) -> list[dict]:
    return [tile["widget"] for tile in board["mosaicLayout"]["tiles"]]


def queries(board: dict) -> list[str]:
    return [
        data_set["timeSeriesQuery"]["prometheusQuery"]
        for widget in widgets(board)
        for data_set in widget.get("xyChart", {}).get("dataSets", [])
        if "prometheusQuery" in data_set["timeSeriesQuery"]
    ]


def filters(board: dict) -> list[str]:
    return [
        data_set["timeSeriesQuery"]["timeSeriesFilter"]["filter"]
        for widget in widgets(board)
        for data_set in widget.get("xyChart", {}).get("dataSets", [])
        if "timeSeriesFilter" in data_set["timeSeriesQuery"]
    ]


VARIANTS = {
    "dev": ("dev", {}),
    "metrics": ("dev", {"prometheusMetrics": True}),
    "prod": ("prod", {}),
}


# --- the dashboard ----------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_dashboard_is_valid_for_the_monitoring_api(variant):
    stack, overrides = VARIANTS[variant]
    assert validate("monitoring.v1", "Dashboard", dashboard_of(plan_of(stack, **overrides))) == []


def test_the_schema_check_catches_a_misspelt_or_misplaced_field():
    board = dashboard_of(plan_of("dev"))
    board["mosaicLayout"]["tiles"][1]["widget"]["xyChart"]["dataSet"] = []
    board["mosaicLayout"]["tiles"][1]["widget"]["xyChart"]["chartOptions"]["mode"] = "PIE"
    board["mosaicLayout"]["tiles"][2]["widget"]["xyChart"]["dataSets"][0]["timeSeriesQuery"][
        "promql"
    ] = "up"
    errors = validate("monitoring.v1", "Dashboard", board)
    assert any(e.endswith("xyChart.dataSet: not a field of XyChart") for e in errors), errors
    assert any("chartOptions.mode: 'PIE' is not one of" in e for e in errors), errors
    assert any(e.endswith("timeSeriesQuery.promql: not a field of TimeSeriesQuery") for e in errors)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_metric_it_names_is_exported_by_the_platform_or_the_server(variant):
    stack, overrides = VARIANTS[variant]
    board = dashboard_of(plan_of(stack, **overrides))
    named = set()
    for query in queries(board):
        named |= monitoring.promql_metrics(query)
    assert named and named <= set(EXPORTED), named - set(EXPORTED)
    for metric_filter in filters(board):
        assert re.search(r'metric.type="([^"]+)"', metric_filter).group(1) in GKE_SYSTEM_METRICS


def test_gpu_and_kubernetes_charts_always_server_charts_with_prometheus_metrics():
    plain = dashboard_of(plan_of("dev"))
    scraped = dashboard_of(plan_of("dev", prometheusMetrics=True))
    plain_names = set().union(*(monitoring.promql_metrics(q) for q in queries(plain)))
    scraped_names = set().union(*(monitoring.promql_metrics(q) for q in queries(scraped)))
    gpu = {
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_XID_ERRORS",
    }
    kube = {"kube_deployment_spec_replicas", "kube_deployment_status_replicas_available"}
    server = {
        "trtllm_request_success_total",
        "trtllm_num_requests_waiting",
        "trtllm_time_to_first_token_seconds",
        "trtllm_time_per_output_token_seconds",
        "trtllm_kv_cache_utilization",
    }
    assert gpu | kube <= plain_names and not plain_names & server
    assert gpu | kube | server <= scraped_names
    texts = [w["text"]["content"] for w in widgets(plain) if "text" in w]
    assert any("prometheusMetrics: true" in t for t in texts)
    titles = [w["title"] for w in widgets(scraped)]
    assert "Time to first token (s)" in titles and "Requests queued and running" in titles


def test_queries_select_this_stacks_cluster_namespace_and_deployment(prod_plan):
    board = dashboard_of(prod_plan)
    assert board["displayName"] == "DeepSeek-R1 on dsr1p-gke (prod)"
    for query in queries(board):
        assert 'cluster="dsr1p-gke"' in query, query
    assert (
        'max(kube_deployment_spec_replicas{cluster="dsr1p-gke",deployment="dsr1p-trtllm-serve"})'
        in queries(board)
    )
    (restarts,) = filters(board)
    assert 'resource.labels.namespace_name="deepseek"' in restarts
    ttft = dashboard_of(plan_of("dev", prometheusMetrics=True))
    assert (
        "histogram_quantile(0.99, sum by (le) (rate(trtllm_time_to_first_token_seconds_bucket"
        '{cluster="dsr1-gke",namespace="deepseek"}[5m])))'
    ) in queries(ttft)


def test_tiles_fit_the_grid_without_overlap(dev_plan):
    board = dashboard_of(plan_of("dev", prometheusMetrics=True))
    cells = set()
    for tile in board["mosaicLayout"]["tiles"]:
        assert tile["xPos"] + tile["width"] <= board["mosaicLayout"]["columns"] == 48
        for x in range(tile["xPos"], tile["xPos"] + tile["width"]):
            for y in range(tile["yPos"], tile["yPos"] + tile["height"]):
                assert (x, y) not in cells, tile
                cells.add((x, y))


def test_the_dashboard_url_is_an_output(dev_plan):
    # The mocks give the dashboard the id `dashboard-id`.
    assert dev_plan.outputs["dashboard"] == (
        "https://console.cloud.google.com/monitoring/dashboards/custom/dashboard-id?project=my-a4-project"
    )
    assert monitoring.dashboard_url("projects/123/dashboards/abc-1", "p") == (
        "https://console.cloud.google.com/monitoring/dashboards/custom/abc-1?project=p"
    )


def test_monitoring_waits_for_the_monitoring_api(dev_plan):
    api = next(
        r
        for r in dev_plan.of_type("gcp:projects/service:Service")
        if r.inputs["service"] == "monitoring.googleapis.com"
    )
    assert api.urn in dev_plan.one(DASHBOARD).dependencies


# --- alert policies ----------------------------------------------------------------


def test_no_alert_policy_without_channels(dev_plan, prod_plan):
    assert dev_plan.of_type(ALERT) == [] and prod_plan.of_type(ALERT) == []


@pytest.fixture(scope="module")
def alerted():
    return plan_of("prod", alertNotificationChannels=[CHANNEL], alertNotReadyMinutes=40)


def test_with_channels_three_policies_notify_them(alerted):
    policies = {p.name: p.inputs for p in alerted.of_type(ALERT)}
    assert sorted(policies) == ["gpu-xid-error", "server-not-ready", "weights-staging-failed"]
    for inputs in policies.values():
        assert inputs["notificationChannels"] == [CHANNEL]
        assert inputs["project"] == "my-a4-project"
        assert inputs["userLabels"] == {"stack": "prod", "cluster": "dsr1p-gke"}


def test_alert_policies_are_valid_for_the_monitoring_api(alerted):
    for policy in alerted.of_type(ALERT):
        body = {k: v for k, v in policy.inputs.items() if k not in ("project",)}
        assert validate("monitoring.v3", "AlertPolicy", body) == [], policy.name


def test_not_ready_for_the_configured_minutes(alerted):
    (condition,) = next(p for p in alerted.of_type(ALERT) if p.name == "server-not-ready").inputs[
        "conditions"
    ]
    promql = condition["conditionPrometheusQueryLanguage"]
    assert promql["duration"] == "2400s"
    # Desired minus ready: zero while serving, and zero while paused (0 - 0).
    assert promql["query"] == (
        'max(kube_deployment_spec_replicas{cluster="dsr1p-gke",deployment="dsr1p-trtllm-serve"}) - '
        'max(kube_deployment_status_replicas_available{cluster="dsr1p-gke",deployment="dsr1p-trtllm-serve"}) > 0'
    )
    assert monitoring.promql_metrics(promql["query"]) <= set(EXPORTED)


def test_any_xid_error_alerts(alerted):
    (condition,) = next(p for p in alerted.of_type(ALERT) if p.name == "gpu-xid-error").inputs[
        "conditions"
    ]
    query = condition["conditionPrometheusQueryLanguage"]["query"]
    assert query == 'max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS{cluster="dsr1p-gke"}) > 0'


def test_a_failed_weights_staging_alerts_from_its_build_log(alerted):
    policy = next(p for p in alerted.of_type(ALERT) if p.name == "weights-staging-failed").inputs
    (condition,) = policy["conditions"]
    log_filter = condition["conditionMatchedLog"]["filter"]
    assert log_filter == (
        'resource.type="build" AND logName="projects/my-a4-project/logs/cloudbuild" '
        'AND textPayload:"weights staging failed"'
    )
    # The API requires a notification rate limit on log-match policies.
    assert policy["alertStrategy"]["notificationRateLimit"] == {"period": "3600s"}


def test_a_pre_staged_source_has_no_staging_alert():
    plan = plan_of(
        "prod", alertNotificationChannels=[CHANNEL], weightsSource="gs://shared-weights/models"
    )
    assert sorted(p.name for p in plan.of_type(ALERT)) == ["gpu-xid-error", "server-not-ready"]


# --- the budget ------------------------------------------------------------------


def test_no_budget_without_a_billing_account(dev_plan):
    assert dev_plan.of_type(BUDGET) == []


def test_a_budget_for_this_project_with_a_billing_account():
    plan = plan_of(
        "dev", billingAccount="012345-6789AB-CDEF01", budgetMonthlyAmount=25000,
        budgetAlertPercents=["50", "100", "120"],
    )  # fmt: skip
    budget = plan.one(BUDGET)
    inputs = budget.inputs
    assert inputs["billingAccount"] == "012345-6789AB-CDEF01"
    assert inputs["amount"] == {"specifiedAmount": {"units": "25000"}}
    assert inputs["budgetFilter"]["projects"] == ["projects/<computed:project.number>"]
    assert [r["thresholdPercent"] for r in inputs["thresholdRules"]] == [0.5, 1.0, 1.2]
    # Billing admins get the mails; no channels configured here.
    assert inputs["allUpdatesRule"]["disableDefaultIamRecipients"] is False
    # The Budget API needs a quota project with user credentials.
    providers = {p.urn: p for p in plan.of_type("pulumi:providers:gcp")}
    used = next(p for urn, p in providers.items() if budget.provider.startswith(urn))
    assert used.inputs["userProjectOverride"] in (True, "true")
    assert used.inputs["billingProject"] == "my-a4-project"
    api = next(
        s
        for s in plan.of_type("gcp:projects/service:Service")
        if s.inputs["service"] == "billingbudgets.googleapis.com"
    )
    assert api.urn in budget.dependencies
