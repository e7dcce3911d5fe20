//! `/metrics`, in Prometheus' text format (`prometheus-client`): requests by route, method and
//! status with a latency histogram, the pool (read from [`strata_db::Pool::metrics`] at each
//! scrape, with the acquire-time histogram the service records), data-layer errors by class,
//! and refused authentications by reason.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use strata_db::Pool;

use crate::problem::ErrorClass;

/// A request's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route's pattern (`/organizations/{org}/tasks/{task}`), never the path itself: ids
    /// would make a series per task.
    route: String,
    status: u16,
}

/// A request's labels without the status (the latency histogram).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// One label: `class` or `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The service's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    acquire: Histogram,
    errors: Family<ClassLabel, Counter>,
    auth_failures: Family<ReasonLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Seconds, 1 ms to about 16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    /// The metrics of a service on `pool`.
    pub fn new(pool: Pool) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "Requests answered", requests.clone());
        let latency = HistogramFamily::<RouteLabels>::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from the request to its answer's headers",
            latency.clone(),
        );
        // 50 µs to about 1.6 s: a pool that has connections answers in microseconds.
        let acquire = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "db_pool_acquire_duration_seconds",
            "Time to get a connection from the pool",
            acquire.clone(),
        );
        let errors = Family::<ClassLabel, Counter>::default();
        registry.register(
            "db_errors",
            "Data-layer errors answered, by class (not_found, conflict, invalid, stale, \
             forbidden, unavailable, in_doubt, serialization, internal)",
            errors.clone(),
        );
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "auth_failures",
            "Refused authentications, by reason (the token is never logged)",
            auth_failures.clone(),
        );
        registry.register_collector(Box::new(PoolCollector(pool)));
        Self { registry, requests, latency, acquire, errors, auth_failures }
    }

    /// Counts a refused authentication.
    pub(crate) fn auth_failure(&self, reason: &'static str) {
        self.auth_failures.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Records how long a connection took to come.
    pub(crate) fn acquired(&self, waited: Duration) {
        self.acquire.observe(waited.as_secs_f64());
    }

    /// The text exposition.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Records every request: a layer over the router, so the route's pattern is known.
pub(crate) async fn record(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    if let Some(ErrorClass(class)) = response.extensions().get::<ErrorClass>() {
        metrics.errors.get_or_create(&ClassLabel { class }).inc();
    }
    let labels = RouteLabels { method, route };
    metrics.latency.get_or_create(&labels).observe(start.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels { method: labels.method, route: labels.route, status })
        .inc();
    response
}

/// The pool's figures, read at each scrape.
#[derive(Debug)]
struct PoolCollector(Pool);

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = self.0.metrics();
        let gauges = [
            ("db_pool_connections", "Connections open", i64::from(m.open)),
            ("db_pool_connections_idle", "Open connections not in use", i64::from(m.idle)),
            ("db_pool_connections_in_use", "Connections handed out", i64::from(m.in_use)),
            (
                "db_pool_max_connections",
                "The most connections the pool opens",
                i64::from(self.0.settings().max_connections),
            ),
            (
                "db_pool_waiting",
                "Callers waiting for a connection",
                i64::try_from(m.waiting).unwrap_or(i64::MAX),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let counters = [
            ("db_pool_connections_opened", "Connections opened", m.opened),
            (
                "db_pool_connections_broken",
                "Connections closed because they broke or failed their check",
                m.replaced,
            ),
            (
                "db_pool_connections_closed_idle",
                "Connections closed by idle_timeout",
                m.closed_idle,
            ),
            (
                "db_pool_connections_closed_lifetime",
                "Connections closed by max_lifetime",
                m.closed_lifetime,
            ),
            ("db_pool_acquisitions", "Connections handed out", m.acquisitions),
            ("db_pool_acquire_timeouts", "Callers that gave up waiting", m.timeouts),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
