"""Watching the stack: a Cloud Monitoring dashboard, alert policies and a billing budget.

Where each metric comes from (every one is named in `METRICS` with its source):
- GPUs: DCGM, which GKE's managed DCGM package exports through Managed
  Service for Prometheus (the cluster enables the `DCGM` monitoring component,
  infra/cluster.py). Names are dcgm-exporter's (NVIDIA/dcgm-exporter
  etc/default-counters.csv); in Cloud Monitoring they are
  `prometheus.googleapis.com/<name>/gauge`, queried here with PromQL.
- The server: trtllm-serve's Prometheus endpoint (`/prometheus/metrics`,
  scraped by the PodMonitoring that `prometheusMetrics: true` adds). Names from
  TensorRT-LLM's `tensorrt_llm/metrics/collector.py` (prefix `trtllm_`): the
  per-request histograms and counters since PR #5785, the KV cache gauges
  since PR #11243 (before 1.3.0rc5), the queue gauges since PR #12545 (merged
  in April 2026, before the pinned 1.3.0rc14 of May 2026).
- Kubernetes: GKE system metrics (`kubernetes.io/container/restart_count`) and
  GKE's managed kube state metrics (`kube_deployment_*`, package enabled by
  the POD/DEPLOYMENT components), cloud.google.com/stackdriver/docs/solutions/gke/kube-state-metrics.
- The weights staging's failure: the line docker/weights/fetch_weights.py logs
  when it gives up, in the Cloud Build run's log (monitored resource `build`,
  log `cloudbuild`, with `logging: CLOUD_LOGGING_ONLY`). Cloud Build itself
  publishes no build-status metric.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.config import StackConfig
from infra.naming import Names


@dataclass(frozen=True)
class Metric:
    name: str  # the Prometheus name (PromQL), or the Cloud Monitoring type
    source: str


DCGM = "GKE managed DCGM (dcgm-exporter etc/default-counters.csv)"
TRTLLM = "trtllm-serve /prometheus/metrics (tensorrt_llm/metrics/collector.py)"
KSM = "GKE managed kube state metrics"
GKE_SYSTEM = "GKE system metrics"
METRICS = {
    m.name: m
    for m in (
        Metric("DCGM_FI_DEV_GPU_UTIL", DCGM),
        Metric("DCGM_FI_DEV_FB_USED", DCGM),
        Metric("DCGM_FI_DEV_POWER_USAGE", DCGM),
        Metric("DCGM_FI_DEV_XID_ERRORS", DCGM),
        Metric("trtllm_request_success_total", TRTLLM),
        Metric("trtllm_num_requests_waiting", TRTLLM),
        Metric("trtllm_num_requests_running", TRTLLM),
        Metric("trtllm_time_to_first_token_seconds", TRTLLM),
        Metric("trtllm_time_per_output_token_seconds", TRTLLM),
        Metric("trtllm_kv_cache_utilization", TRTLLM),
        Metric("kube_deployment_spec_replicas", KSM),
        Metric("kube_deployment_status_replicas_available", KSM),
        Metric("kubernetes.io/container/restart_count", GKE_SYSTEM),
    )
}
_PROMQL_NAME = re.compile(r"\b(DCGM_FI_[A-Z_]+|trtllm_[a-z_]+|kube_[a-z_]+)\b")


def promql_metrics(query: str) -> set[str]:
    """The metric names a PromQL query reads (histogram series resolved to the histogram)."""
    names = set()
    for name in _PROMQL_NAME.findall(query):
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name.removesuffix(suffix) in METRICS:
                name = name.removesuffix(suffix)
        names.add(name)
    return names


@dataclass(frozen=True)
class Scope:
    """Which series belong to this stack."""

    project: str
    cluster: str
    namespace: str
    deployment: str

    @property
    def target(self) -> str:
        """Prometheus-target labels of the server's own metrics (PodMonitoring)."""
        return f'cluster="{self.cluster}",namespace="{self.namespace}"'

    @property
    def gpus(self) -> str:
        return f'cluster="{self.cluster}"'

    @property
    def server_deployment(self) -> str:
        return f'cluster="{self.cluster}",deployment="{self.deployment}"'


def scope_of(cfg: StackConfig, names: Names, deployment: str) -> Scope:
    return Scope(cfg.project, names.cluster, cfg.namespace, deployment)


# --------------------------------------------------------------------------
# The dashboard (pure: a dict in the Monitoring API's Dashboard shape)

WIDTH = 48  # a mosaic layout's grid is 48 columns wide


def _promql_chart(title: str, queries: dict[str, str], unit: str = "") -> dict:
    data_sets = []
    for legend, query in queries.items():
        data_set: dict = {
            "plotType": "LINE",
            "targetAxis": "Y1",
            "legendTemplate": legend,
            "timeSeriesQuery": {"prometheusQuery": query},
        }
        if unit:
            data_set["timeSeriesQuery"]["unitOverride"] = unit
        data_sets.append(data_set)
    return {"title": title, "xyChart": {"dataSets": data_sets, "chartOptions": {"mode": "COLOR"}}}


def _filter_chart(
    title: str, metric_filter: str, aligner: str, reducer: str, group_by: list[str]
) -> dict:
    return {
        "title": title,
        "xyChart": {
            "dataSets": [
                {
                    "plotType": "STACKED_BAR",
                    "targetAxis": "Y1",
                    "timeSeriesQuery": {
                        "timeSeriesFilter": {
                            "filter": metric_filter,
                            "aggregation": {
                                "alignmentPeriod": "300s",
                                "perSeriesAligner": aligner,
                                "crossSeriesReducer": reducer,
                                "groupByFields": group_by,
                            },
                        }
                    },
                }
            ],
            "chartOptions": {"mode": "COLOR"},
        },
    }


def _header(title: str, subtitle: str) -> dict:
    return {"title": title, "sectionHeader": {"subtitle": subtitle, "dividerBelow": True}}


def _quantiles(histogram: str, selector: str) -> dict[str, str]:
    rate = f"sum by (le) (rate({histogram}_bucket{{{selector}}}[5m]))"
    return {f"p{q}": f"histogram_quantile(0.{q}, {rate})" for q in (50, 90, 99)}


def dashboard_widgets(cfg: StackConfig, scope: Scope) -> list[dict]:
    """Section headers and charts, in reading order."""
    gpus, target, deployment = scope.gpus, scope.target, scope.server_deployment
    widgets = [
        _header("GPUs", "DCGM, from GKE's managed DCGM package; one line per GPU"),
        _promql_chart(
            "GPU utilization (%)",
            {"${Hostname} GPU ${gpu}": f"DCGM_FI_DEV_GPU_UTIL{{{gpus}}}"},
        ),
        _promql_chart(
            "GPU memory used (MiB)",
            {"${Hostname} GPU ${gpu}": f"DCGM_FI_DEV_FB_USED{{{gpus}}}"},
        ),
        _promql_chart(
            "GPU power (W)",
            {"${Hostname} GPU ${gpu}": f"DCGM_FI_DEV_POWER_USAGE{{{gpus}}}"},
        ),
        _promql_chart(
            "Last XID error (0: none)",
            {
                "${Hostname} GPU ${gpu}": (
                    f"max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS{{{gpus}}})"
                )
            },
        ),
    ]
    if cfg.prometheus_metrics:
        widgets += [
            _header("Server", "trtllm-serve's Prometheus metrics (/prometheus/metrics)"),
            _promql_chart(
                "Finished requests (per second)",
                {
                    "${finished_reason}": (
                        "sum by (finished_reason) "
                        f"(rate(trtllm_request_success_total{{{target}}}[5m]))"
                    )
                },
            ),
            _promql_chart(
                "Requests queued and running",
                {
                    "queued": f"sum(trtllm_num_requests_waiting{{{target}}})",
                    "running": f"sum(trtllm_num_requests_running{{{target}}})",
                },
            ),
            _promql_chart(
                "Time to first token (s)",
                _quantiles("trtllm_time_to_first_token_seconds", target),
                unit="s",
            ),
            _promql_chart(
                "Time per output token (s)",
                _quantiles("trtllm_time_per_output_token_seconds", target),
                unit="s",
            ),
            _promql_chart(
                "KV cache used (fraction)",
                {"${pod}": f"max by (pod) (trtllm_kv_cache_utilization{{{target}}})"},
            ),
        ]
    else:
        widgets += [
            _header("Server", "request metrics are off"),
            {
                "title": "Request rate, queue, TTFT/TPOT, KV cache",
                "text": {
                    "content": "Set `prometheusMetrics: true` and run `pulumi up` to scrape "
                    "trtllm-serve's Prometheus metrics and chart them here.",
                    "format": "MARKDOWN",
                },
            },
        ]
    widgets += [
        _header("Kubernetes", "the server Deployment"),
        _promql_chart(
            "Server replicas: desired and ready",
            {
                "desired": f"max(kube_deployment_spec_replicas{{{deployment}}})",
                "ready": f"max(kube_deployment_status_replicas_available{{{deployment}}})",
            },
        ),
        _filter_chart(
            "Server container restarts (per 5 minutes)",
            " AND ".join(
                [
                    'metric.type="kubernetes.io/container/restart_count"',
                    'resource.type="k8s_container"',
                    f'resource.labels.cluster_name="{scope.cluster}"',
                    f'resource.labels.namespace_name="{scope.namespace}"',
                ]
            ),
            aligner="ALIGN_DELTA",
            reducer="REDUCE_SUM",
            group_by=["resource.labels.pod_name", "resource.labels.container_name"],
        ),
    ]
    return widgets


def dashboard(cfg: StackConfig, scope: Scope, title: str) -> dict:
    """Widgets two to a row (half width); section headers span the row."""
    tiles, y, x = [], 0, 0
    for widget in dashboard_widgets(cfg, scope):
        if "sectionHeader" in widget or "text" in widget:
            if x:
                y, x = y + 16, 0
            height = 4 if "sectionHeader" in widget else 8
            tiles.append({"xPos": 0, "yPos": y, "width": WIDTH, "height": height, "widget": widget})
            y += height
            continue
        tiles.append({"xPos": x, "yPos": y, "width": WIDTH // 2, "height": 16, "widget": widget})
        x = (x + WIDTH // 2) % WIDTH
        if x == 0:
            y += 16
    return {
        "displayName": title,
        "labels": {"deepseek-r1-trtllm": ""},
        "mosaicLayout": {"columns": WIDTH, "tiles": tiles},
    }


def dashboard_url(dashboard_id: str, project: str) -> str:
    """The console page of a dashboard; its resource id is projects/<n>/dashboards/<id>."""
    return (
        "https://console.cloud.google.com/monitoring/dashboards/custom/"
        f"{dashboard_id.rsplit('/', 1)[-1]}?project={project}"
    )


# --------------------------------------------------------------------------
# Alert policies (pure: their conditions)


def not_ready_query(scope: Scope) -> str:
    """Desired minus ready replicas: 0 when serving, and when paused (0 - 0)."""
    d = scope.server_deployment
    return (
        f"max(kube_deployment_spec_replicas{{{d}}}) - "
        f"max(kube_deployment_status_replicas_available{{{d}}}) > 0"
    )


def xid_query(scope: Scope) -> str:
    return f"max by (Hostname, gpu) (DCGM_FI_DEV_XID_ERRORS{{{scope.gpus}}}) > 0"


# What docker/weights/fetch_weights.py logs when it gives up.
STAGING_FAILED = "weights staging failed"


def staging_failed_filter(scope: Scope) -> str:
    """The stager's give-up line in its Cloud Build log."""
    return " AND ".join(
        [
            'resource.type="build"',
            f'logName="projects/{scope.project}/logs/cloudbuild"',
            f'textPayload:"{STAGING_FAILED}"',
        ]
    )


def budget_percents(cfg: StackConfig) -> list[float]:
    return [int(p) / 100 for p in cfg.budget_alert_percents]


# --------------------------------------------------------------------------
# The component


class Monitoring(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        names: Names,
        deployment: str,
        stages_weights: bool,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("a4deepseek:infra:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        scope = scope_of(cfg, names, deployment)
        stack = pulumi.get_stack()
        title = f"DeepSeek-R1 on {names.cluster} ({stack})"

        self.dashboard = gcp.monitoring.Dashboard(
            "dashboard",
            project=cfg.project,
            dashboard_json=json.dumps(dashboard(cfg, scope, title), sort_keys=True),
            opts=child,
        )
        self.url = self.dashboard.id.apply(lambda i: dashboard_url(i, cfg.project))

        self.alert_policies: list[gcp.monitoring.AlertPolicy] = []
        if cfg.alert_notification_channels:
            self.alert_policies = self._alerts(cfg, scope, stages_weights, stack, child)

        self.budget = None
        if cfg.billing_account:
            self.budget = self._budget(cfg, names, stack, depends_on)

        self.register_outputs({"dashboard": self.url})

    def _alerts(
        self,
        cfg: StackConfig,
        scope: Scope,
        stages_weights: bool,
        stack: str,
        child: pulumi.ResourceOptions,
    ) -> list[gcp.monitoring.AlertPolicy]:
        channels = list(cfg.alert_notification_channels)
        labels = {"stack": stack, "cluster": scope.cluster}

        def policy(
            key: str,
            title: str,
            severity: str,
            doc: str,
            condition: gcp.monitoring.AlertPolicyConditionArgs,
            strategy: gcp.monitoring.AlertPolicyAlertStrategyArgs | None = None,
        ) -> gcp.monitoring.AlertPolicy:
            return gcp.monitoring.AlertPolicy(
                key,
                project=cfg.project,
                display_name=f"{title} ({scope.cluster}, {stack})",
                combiner="OR",
                severity=severity,
                notification_channels=channels,
                user_labels=labels,
                documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                    content=doc, mime_type="text/markdown"
                ),
                conditions=[condition],
                alert_strategy=strategy
                or gcp.monitoring.AlertPolicyAlertStrategyArgs(auto_close="86400s"),
                opts=child,
            )

        minutes = cfg.alert_not_ready_minutes
        policies = [
            policy(
                "server-not-ready",
                "DeepSeek-R1 server not ready",
                "CRITICAL",
                f"The server Deployment `{scope.namespace}/{scope.deployment}` has had fewer "
                f"ready replicas than desired for {minutes} minutes. A cold start (weights "
                "load, kernel JIT) also counts: raise `alertNotReadyMinutes` above yours. "
                "Look at `kubectl -n "
                f"{scope.namespace} describe pods` and the server's log.",
                gcp.monitoring.AlertPolicyConditionArgs(
                    display_name="ready replicas below desired",
                    condition_prometheus_query_language=gcp.monitoring.AlertPolicyConditionConditionPrometheusQueryLanguageArgs(
                        query=not_ready_query(scope),
                        duration=f"{minutes * 60}s",
                        evaluation_interval="60s",
                    ),
                ),
            ),
            policy(
                "gpu-xid-error",
                "GPU XID error",
                "CRITICAL",
                "A GPU on the stack's nodes reported an XID error (the chart shows the last "
                "code per GPU). 48, 63, 64, 74, 79, 94 and 95 usually need the node replaced: "
                "cordon and drain it, or let auto-repair act. See NVIDIA's XID catalogue.",
                gcp.monitoring.AlertPolicyConditionArgs(
                    display_name="DCGM reports an XID error",
                    condition_prometheus_query_language=gcp.monitoring.AlertPolicyConditionConditionPrometheusQueryLanguageArgs(
                        query=xid_query(scope), duration="0s", evaluation_interval="60s"
                    ),
                ),
            ),
        ]
        if stages_weights:
            policies.append(
                policy(
                    "weights-staging-failed",
                    "Weights staging failed",
                    "ERROR",
                    "The Cloud Build run that stages the checkpoint into the bucket gave up "
                    "(a file failed its checks after every retry, the Hub was unreachable, or "
                    "`weightsMinutes` ran out). Open the build's log (Cloud Build history, "
                    "region of the stack), fix the cause (token, quota, disk), then `pulumi up` "
                    "again: staging resumes from the verified files.",
                    gcp.monitoring.AlertPolicyConditionArgs(
                        display_name="the stager logged that it gave up",
                        condition_matched_log=gcp.monitoring.AlertPolicyConditionConditionMatchedLogArgs(
                            filter=staging_failed_filter(scope)
                        ),
                    ),
                    # Required for log-match conditions (monitoring v3 AlertStrategy).
                    gcp.monitoring.AlertPolicyAlertStrategyArgs(
                        auto_close="86400s",
                        notification_rate_limit=gcp.monitoring.AlertPolicyAlertStrategyNotificationRateLimitArgs(
                            period="3600s"
                        ),
                    ),
                )
            )
        return policies

    def _budget(
        self, cfg: StackConfig, names: Names, stack: str, depends_on: Sequence[pulumi.Resource]
    ) -> gcp.billing.Budget:
        # The Budget API bills its calls to a quota project: with user credentials
        # (ADC) it needs billing_project and user_project_override on the
        # provider, or answers 403 (pulumi-gcp billing.Budget docs).
        provider = gcp.Provider(
            "billing",
            project=cfg.project,
            billing_project=cfg.project,
            user_project_override=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_billing = pulumi.ResourceOptions(parent=self, provider=provider)
        api = gcp.projects.Service(
            "billingbudgets",
            project=cfg.project,
            service="billingbudgets.googleapis.com",
            disable_on_destroy=False,
            disable_dependent_services=False,
            opts=pulumi.ResourceOptions.merge(
                on_billing, pulumi.ResourceOptions(depends_on=depends_on)
            ),
        )
        number = gcp.organizations.get_project_output(
            project_id=cfg.project,
            opts=pulumi.InvokeOutputOptions(parent=self, provider=provider, depends_on=depends_on),
        ).number
        return gcp.billing.Budget(
            "budget",
            billing_account=cfg.billing_account,
            display_name=f"{names.cluster} ({stack})"[:60],
            budget_filter=gcp.billing.BudgetBudgetFilterArgs(
                projects=[number.apply(lambda n: f"projects/{n}")], calendar_period="MONTH"
            ),
            # The currency is the billing account's (it must match when given).
            amount=gcp.billing.BudgetAmountArgs(
                specified_amount=gcp.billing.BudgetAmountSpecifiedAmountArgs(
                    units=str(cfg.budget_monthly_amount)
                )
            ),
            threshold_rules=[
                gcp.billing.BudgetThresholdRuleArgs(
                    threshold_percent=percent, spend_basis="CURRENT_SPEND"
                )
                for percent in budget_percents(cfg)
            ],
            all_updates_rule=gcp.billing.BudgetAllUpdatesRuleArgs(
                monitoring_notification_channels=list(cfg.alert_notification_channels),
                disable_default_iam_recipients=False,
            ),
            opts=pulumi.ResourceOptions.merge(on_billing, pulumi.ResourceOptions(depends_on=[api])),
        )
