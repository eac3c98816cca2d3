//! The applications behind the load balancer (`weir gen --kind app`): Heroku-style processes
//! (`web.1`, `web.2`, `worker.1` on several hosts) writing l2met key=value lines
//! (`measure#`, `count#`, `sample#`), plain text, errors followed by their stack trace one
//! frame per line, and runtime metrics, deterministic for a seed.
//!
//! Lines are written rsyslog file style (`Nov 22 01:22:06 app1 web.1[4123]: at=info ...`) into
//! the caller's buffer without allocating; each call returns the line's syslog PRI (facility
//! `local7`, severity by level) for the network framings.

use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use weir_model::Micros;

use crate::haproxy::DateCache;

/// Applications log to `local7`.
const LOCAL7: u8 = 23;
/// `local7.info`: requests, jobs, metrics, plain text.
pub const PRI_INFO: u8 = LOCAL7 * 8 + 6;
/// `local7.warning`: slow queries, a pool near capacity.
pub const PRI_WARNING: u8 = LOCAL7 * 8 + 4;
/// `local7.err`: failed requests and jobs, and their stack traces.
pub const PRI_ERR: u8 = LOCAL7 * 8 + 3;

/// Mean simulated line rate of `--kind app` alone, per second.
const APP_RATE: f64 = 60.0;

/// What a process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Serves HTTP requests (the load balancer's `be_app` and `be_api` servers).
    Web,
    /// Runs background jobs.
    Worker,
}

/// The two applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum App {
    /// The shop (`www.example.com`), on the load balancer's `be_app` servers.
    Shop,
    /// The API (`api.example.com`), on the `be_api` servers.
    Api,
}

/// An application process: its host, its dyno (the syslog tag), what it does, how much it logs.
#[derive(Debug, Clone, Copy)]
struct ProcSpec {
    host: &'static str,
    dyno: &'static str,
    app: App,
    role: Role,
    weight: u32,
}

const fn proc_spec(host: &'static str, dyno: &'static str, app: App, role: Role, weight: u32) -> ProcSpec {
    ProcSpec {
        host,
        dyno,
        app,
        role,
        weight,
    }
}

/// Two applications (the shop on `app*`, the API on `api*`, as the load balancer names its
/// servers), each with two web dynos and a worker.
const PROCS: &[ProcSpec] = &[
    proc_spec("app1", "web.1", App::Shop, Role::Web, 30),
    proc_spec("app2", "web.2", App::Shop, Role::Web, 30),
    proc_spec("app3", "worker.1", App::Shop, Role::Worker, 12),
    proc_spec("api1", "web.1", App::Api, Role::Web, 20),
    proc_spec("api2", "web.2", App::Api, Role::Web, 20),
    proc_spec("api3", "worker.1", App::Api, Role::Worker, 8),
];

/// A route a web dyno serves: method, path before the id, id bound (0: no id), path after it.
#[derive(Debug, Clone, Copy)]
struct RouteSpec {
    app: App,
    method: &'static str,
    prefix: &'static str,
    id: u32,
    suffix: &'static str,
    /// The success status.
    ok: u16,
    /// Median database time of the request, ms (0: no database).
    db_ms: f64,
    weight: u32,
}

#[allow(clippy::too_many_arguments)]
const fn route(
    app: App,
    method: &'static str,
    prefix: &'static str,
    id: u32,
    suffix: &'static str,
    ok: u16,
    db_ms: f64,
    weight: u32,
) -> RouteSpec {
    RouteSpec {
        app,
        method,
        prefix,
        id,
        suffix,
        ok,
        db_ms,
        weight,
    }
}

const ROUTES: &[RouteSpec] = &[
    route(App::Shop, "GET", "/", 0, "", 200, 5.0, 20),
    route(App::Shop, "GET", "/products/", 40_000, "", 200, 4.0, 30),
    route(App::Shop, "GET", "/api/items", 0, "", 200, 6.0, 15),
    route(App::Shop, "GET", "/api/items/", 40_000, "", 200, 2.5, 15),
    route(App::Shop, "GET", "/cart", 0, "", 200, 3.0, 6),
    route(App::Shop, "POST", "/cart/items", 0, "", 201, 3.0, 4),
    route(App::Shop, "POST", "/checkout", 0, "", 200, 25.0, 1),
    route(App::Shop, "GET", "/healthz", 0, "", 200, 0.0, 4),
    route(App::Api, "GET", "/v1/users/", 2_000_000, "", 200, 1.5, 20),
    route(App::Api, "GET", "/v1/orders/", 9_000_000, "", 200, 3.5, 15),
    route(App::Api, "GET", "/v1/items/", 40_000, "/stock", 200, 2.0, 20),
    route(App::Api, "POST", "/v1/orders", 0, "", 201, 12.0, 5),
    route(
        App::Api,
        "PUT",
        "/v1/users/",
        2_000_000,
        "/preferences",
        200,
        4.0,
        3,
    ),
    route(App::Api, "DELETE", "/v1/cart/items/", 40_000, "", 204, 2.0, 2),
    route(App::Api, "GET", "/healthz", 0, "", 200, 0.0, 4),
];

/// Background jobs: name, queue, median duration in ms.
const JOBS: &[(&str, &str, f64)] = &[
    ("SendReceiptEmail", "mailers", 120.0),
    ("ChargeCard", "billing", 450.0),
    ("ReindexItem", "search", 35.0),
    ("GenerateInvoicePdf", "default", 900.0),
    ("SyncInventory", "default", 240.0),
];

/// What a failed request raises.
const WEB_ERRORS: &[&str] = &[
    "PG::ConnectionBad: could not connect to server: Connection refused",
    "Redis::TimeoutError: Connection timed out",
    "NoMethodError: undefined method 'price' for nil:NilClass",
    "Net::ReadTimeout: Net::ReadTimeout with #<TCPSocket:(closed)>",
    "ActiveRecord::StatementInvalid: PG::QueryCanceled: canceling statement due to statement timeout",
];

/// What a failed job raises.
const JOB_ERRORS: &[&str] = &[
    "Stripe::CardError: Your card was declined.",
    "Net::SMTPServerBusy: 451 4.3.0 Mail server temporarily rejected message",
    "Faraday::ConnectionFailed: Failed to open TCP connection to inventory.internal:443",
];

/// Stack frames, read in order from a random start (a trace is a run of consecutive frames).
const FRAMES: &[&str] = &[
    "/app/app/models/order.rb:42:in 'Order#charge!'",
    "/app/app/controllers/checkout_controller.rb:18:in 'CheckoutController#create'",
    "/app/vendor/bundle/ruby/3.3.0/gems/activerecord-7.1.3/lib/active_record/connection_adapters/postgresql_adapter.rb:37:in 'PG::Connection#exec_params'",
    "/app/vendor/bundle/ruby/3.3.0/gems/actionpack-7.1.3/lib/action_controller/metal/basic_implicit_render.rb:6:in 'send_action'",
    "/app/app/jobs/charge_card_job.rb:11:in 'ChargeCardJob#perform'",
    "/app/vendor/bundle/ruby/3.3.0/gems/sidekiq-7.2.1/lib/sidekiq/processor.rb:202:in 'Sidekiq::Processor#execute_job'",
    "/app/app/services/inventory_sync.rb:57:in 'InventorySync#call'",
    "/app/vendor/bundle/ruby/3.3.0/gems/redis-client-0.19.1/lib/redis_client/ruby_connection.rb:117:in 'RedisClient::RubyConnection#read'",
    "/app/app/controllers/items_controller.rb:23:in 'ItemsController#show'",
    "/app/vendor/bundle/ruby/3.3.0/gems/rack-3.0.9/lib/rack/sendfile.rb:114:in 'call'",
];

/// Plain text a web dyno prints at boot and while running.
const WEB_TEXT: &[&str] = &[
    "Starting web server pool (4 workers, 5 threads each)",
    "* Listening on http://0.0.0.0:5000",
    "Worker 2 booted in 1.84s, phase: 0",
    "Cache warmed: 1200 keys in 240ms",
    "Received SIGTERM, draining connections",
    "Booting Puma 6.4.2 in cluster mode",
];

/// Plain text a worker prints.
const WORKER_TEXT: &[&str] = &[
    "Starting worker pool size=10 queues=default,mailers,billing,search",
    "Processing queue billing (3 jobs pending)",
    "Heartbeat: 8 busy, 2 idle",
    "Retrying job ChargeCard in 30s (attempt 2 of 25)",
    "Scheduled 14 jobs from cron",
];

/// A process with its pid and its Heroku dyno id.
#[derive(Debug)]
struct Proc {
    spec: &'static ProcSpec,
    pid: u32,
    /// `heroku.<n>.<uuid>`, as runtime metrics name the dyno.
    dyno_id: String,
}

/// A stack trace being written, one frame per line.
#[derive(Debug, Clone, Copy)]
struct Trace {
    proc: usize,
    frame: usize,
    left: u32,
}

/// The generator of application lines.
pub struct AppGen {
    rng: StdRng,
    clock: Micros,
    procs: Vec<Proc>,
    proc_pick: WeightedIndex<u32>,
    /// Routes of the shop and of the API.
    route_pick: [WeightedIndex<u32>; 2],
    /// Request duration (ms) beyond the database time.
    app_ms: LogNormal<f64>,
    /// The trace that the next lines continue, if any.
    trace: Option<Trace>,
    date: DateCache,
    int: itoa::Buffer,
    /// The shop's processes name themselves as on Heroku (`shop[web.1]`) rather than by tag and
    /// pid (`web.1[4123]`).
    heroku_names: bool,
}

impl AppGen {
    /// A generator whose first line is written at `start`, reproducible for `seed`.
    pub fn new(seed: u64, start: Micros) -> AppGen {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_a995);
        let procs = PROCS
            .iter()
            .map(|spec| {
                let pid = rng.random_range(100..32_000);
                let n = rng.random_range(100_000..999_999u32);
                let id = rng.random::<u128>();
                Proc {
                    spec,
                    pid,
                    dyno_id: format!("heroku.{n}.{}", Uuid(id)),
                }
            })
            .collect();
        AppGen {
            rng,
            clock: start,
            procs,
            proc_pick: WeightedIndex::new(PROCS.iter().map(|p| p.weight)).expect("process weights"),
            route_pick: [App::Shop, App::Api].map(|app| {
                let weights = ROUTES.iter().map(|r| if r.app == app { r.weight } else { 0 });
                WeightedIndex::new(weights).expect("route weights")
            }),
            app_ms: LogNormal::new(12f64.ln(), 0.8).expect("finite log-normal parameters"),
            trace: None,
            date: DateCache::new(),
            int: itoa::Buffer::new(),
            heroku_names: false,
        }
    }

    /// From now on, the shop's processes name themselves as Heroku's router and logplex do,
    /// app as the tag and process as the procid (`app1 shop[web.1]:`), while the API's keep
    /// the process as the tag and the pid as the procid (`api1 web.1[4123]:`): both
    /// conventions in one stream.
    pub fn name_shop_as_heroku(&mut self) {
        self.heroku_names = true;
    }

    /// Appends the next line, `\n`-terminated, a random gap after the previous one; returns
    /// its syslog PRI.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> u8 {
        let gap = -(1.0 - self.rng.random::<f64>()).ln() / APP_RATE;
        let t = self.clock + (gap * 1e6) as Micros;
        self.line_at(t, buf)
    }

    /// Appends the next line stamped `t` (or the previous line's time if that is later), as
    /// when application lines are interleaved with the load balancer's; returns its PRI.
    pub fn line_at(&mut self, t: Micros, buf: &mut Vec<u8>) -> u8 {
        self.clock = self.clock.max(t);
        if let Some(trace) = self.trace {
            self.header(buf, trace.proc);
            buf.extend_from_slice(b"    from ");
            buf.extend_from_slice(FRAMES[trace.frame % FRAMES.len()].as_bytes());
            buf.push(b'\n');
            self.trace = (trace.left > 1).then_some(Trace {
                frame: trace.frame + 1,
                left: trace.left - 1,
                ..trace
            });
            return PRI_ERR;
        }
        let p = self.proc_pick.sample(&mut self.rng);
        self.header(buf, p);
        let pri = match (self.procs[p].spec.role, self.rng.random_range(0..100)) {
            (_, 0..=5) => self.runtime_metrics(buf, p),
            (_, 6..=8) => self.plain_text(buf, p),
            (Role::Web, 9..=12) => self.slow_query(buf),
            (Role::Web, _) => self.request(buf, p),
            (Role::Worker, 9..=14) => self.queue_sample(buf),
            (Role::Worker, _) => self.job(buf, p),
        };
        buf.push(b'\n');
        pri
    }

    /// Appends a logfmt line of exactly ten `key=value` pairs from a web process, a random gap
    /// after the previous line (`at=info method=GET path=/api/items/12 status=200
    /// duration=12ms bytes=5120 request_id=... user_id=812 region=eu-west-1 cache=hit`);
    /// returns its PRI. `weir gen --kind logfmt`.
    pub fn logfmt_line(&mut self, buf: &mut Vec<u8>) -> u8 {
        let p = self.next_web(buf);
        let app = self.procs[p].spec.app as usize;
        let r = ROUTES[self.route_pick[app].sample(&mut self.rng)];
        buf.extend_from_slice(b"at=info method=");
        buf.extend_from_slice(r.method.as_bytes());
        buf.extend_from_slice(b" path=");
        buf.extend_from_slice(r.prefix.as_bytes());
        if r.id > 0 {
            let id = self.rng.random_range(1..=u64::from(r.id));
            self.push_u64(buf, id);
        }
        buf.extend_from_slice(r.suffix.as_bytes());
        buf.extend_from_slice(b" status=");
        self.push_u64(buf, u64::from(r.ok));
        buf.extend_from_slice(b" duration=");
        let ms = self.app_ms.sample(&mut self.rng).min(30_000.0) as u64;
        self.push_u64(buf, ms);
        buf.extend_from_slice(b"ms bytes=");
        let bytes = self.rng.random_range(200..64_000u64);
        self.push_u64(buf, bytes);
        buf.extend_from_slice(b" request_id=");
        self.push_uuid(buf);
        buf.extend_from_slice(b" user_id=");
        let user = self.rng.random_range(1..100_000u64);
        self.push_u64(buf, user);
        buf.extend_from_slice(b" region=");
        buf.extend_from_slice(
            ["eu-west-1", "us-east-1", "ap-south-1"][self.rng.random_range(0..3)].as_bytes(),
        );
        buf.extend_from_slice(if self.rng.random_bool(0.8) {
            b" cache=hit\n"
        } else {
            b" cache=miss\n"
        });
        PRI_INFO
    }

    /// Appends an l2met line from a web process, a random gap after the previous line
    /// (`source=web.1 measure#http.latency=14ms measure#db.query=3.2ms count#http.requests=1
    /// sample#db.pool.busy=4`); returns its PRI. `weir gen --kind l2met`.
    pub fn l2met_line(&mut self, buf: &mut Vec<u8>) -> u8 {
        let p = self.next_web(buf);
        buf.extend_from_slice(b"source=");
        buf.extend_from_slice(self.procs[p].spec.dyno.as_bytes());
        let db = self.app_ms.sample(&mut self.rng).min(30_000.0) / 3.0;
        let latency = db + self.app_ms.sample(&mut self.rng).min(30_000.0);
        buf.extend_from_slice(b" measure#http.latency=");
        self.push_tenths(buf, latency);
        buf.extend_from_slice(b"ms measure#db.query=");
        self.push_tenths(buf, db);
        buf.extend_from_slice(b"ms count#http.requests=1 sample#db.pool.busy=");
        let busy = self.rng.random_range(0..=20u64);
        self.push_u64(buf, busy);
        buf.push(b'\n');
        PRI_INFO
    }

    /// Moves the clock a random gap on and writes the header of a web process; returns it.
    fn next_web(&mut self, buf: &mut Vec<u8>) -> usize {
        let gap = -(1.0 - self.rng.random::<f64>()).ln() / APP_RATE;
        self.clock += (gap * 1e6) as Micros;
        let p = loop {
            let p = self.proc_pick.sample(&mut self.rng);
            if self.procs[p].spec.role == Role::Web {
                break p;
            }
        };
        self.header(buf, p);
        p
    }

    /// `Nov 22 01:22:06 app1 web.1[4123]: `.
    fn header(&mut self, buf: &mut Vec<u8>, p: usize) {
        self.date.set(self.clock);
        buf.extend_from_slice(&self.date.syslog);
        buf.push(b' ');
        let proc = &self.procs[p];
        buf.extend_from_slice(proc.spec.host.as_bytes());
        buf.push(b' ');
        if self.heroku_names && proc.spec.app == App::Shop {
            buf.extend_from_slice(b"shop[");
            buf.extend_from_slice(proc.spec.dyno.as_bytes());
            buf.extend_from_slice(b"]: ");
            return;
        }
        buf.extend_from_slice(proc.spec.dyno.as_bytes());
        buf.push(b'[');
        buf.extend_from_slice(self.int.format(proc.pid).as_bytes());
        buf.extend_from_slice(b"]: ");
    }

    /// `at=info method=GET path=/api/items/12 status=200 duration=12ms request_id=... measure#...`,
    /// or `at=error ... error="..."` and a stack trace for a 5xx.
    fn request(&mut self, buf: &mut Vec<u8>, p: usize) -> u8 {
        let app = self.procs[p].spec.app as usize;
        let r = ROUTES[self.route_pick[app].sample(&mut self.rng)];
        let status = match self.rng.random_range(0..1000) {
            0..=9 => 500,
            10..=11 => 503,
            12..=41 if r.id > 0 => 404,
            42..=51 if r.method != "GET" => 422,
            52..=91 if r.method == "GET" => 304,
            _ => r.ok,
        };
        let db = (r.db_ms > 0.0).then(|| {
            let v: f64 = LogNormal::new(r.db_ms.ln(), 0.9)
                .expect("finite log-normal parameters")
                .sample(&mut self.rng);
            v.min(30_000.0)
        });
        let duration = (self.app_ms.sample(&mut self.rng) + db.unwrap_or(0.0)).min(30_000.0) as u64;
        let error = status >= 500;
        buf.extend_from_slice(if error { b"at=error" } else { b"at=info" });
        buf.extend_from_slice(b" method=");
        buf.extend_from_slice(r.method.as_bytes());
        buf.extend_from_slice(b" path=");
        buf.extend_from_slice(r.prefix.as_bytes());
        if r.id > 0 {
            let u: f64 = self.rng.random();
            self.push_u64(buf, 1 + (f64::from(r.id) * u * u) as u64);
        }
        buf.extend_from_slice(r.suffix.as_bytes());
        buf.extend_from_slice(b" status=");
        self.push_u64(buf, u64::from(status));
        buf.extend_from_slice(b" duration=");
        self.push_u64(buf, duration);
        buf.extend_from_slice(b"ms request_id=");
        self.push_uuid(buf);
        if error {
            buf.extend_from_slice(b" error=\"");
            let e = WEB_ERRORS[self.rng.random_range(0..WEB_ERRORS.len())];
            buf.extend_from_slice(e.as_bytes());
            buf.push(b'"');
            self.start_trace(p);
            return PRI_ERR;
        }
        if let Some(db) = db {
            buf.extend_from_slice(b" measure#db.query=");
            self.push_tenths(buf, db);
            buf.extend_from_slice(b"ms");
        }
        if r.method == "GET" {
            let hit = self.rng.random_bool(0.8);
            buf.extend_from_slice(if hit {
                b" count#cache.hit=1"
            } else {
                b" count#cache.miss=1"
            });
        }
        buf.extend_from_slice(b" sample#queue.depth=");
        let depth = (self.rng.random::<f64>().powi(4) * 20.0) as u64;
        self.push_u64(buf, depth);
        PRI_INFO
    }

    /// `at=info job=ChargeCard queue=billing jid=... duration=450ms measure#job.duration=450ms ...`,
    /// or a failed job and its stack trace.
    fn job(&mut self, buf: &mut Vec<u8>, p: usize) -> u8 {
        let (name, queue, median) = JOBS[self.rng.random_range(0..JOBS.len())];
        let failed = self.rng.random_bool(0.03);
        buf.extend_from_slice(if failed { b"at=error" } else { b"at=info" });
        buf.extend_from_slice(b" job=");
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(b" queue=");
        buf.extend_from_slice(queue.as_bytes());
        buf.extend_from_slice(b" jid=");
        let jid: u64 = self.rng.random();
        push_hex(buf, u128::from(jid), 16);
        if failed {
            buf.extend_from_slice(b" error=\"");
            let e = JOB_ERRORS[self.rng.random_range(0..JOB_ERRORS.len())];
            buf.extend_from_slice(e.as_bytes());
            buf.extend_from_slice(b"\" count#jobs.failed=1");
            self.start_trace(p);
            return PRI_ERR;
        }
        let d: f64 = LogNormal::new(median.ln(), 0.7)
            .expect("finite log-normal parameters")
            .sample(&mut self.rng);
        let d = d.min(600_000.0) as u64;
        buf.extend_from_slice(b" duration=");
        self.push_u64(buf, d);
        buf.extend_from_slice(b"ms measure#job.duration=");
        self.push_u64(buf, d);
        buf.extend_from_slice(b"ms count#jobs.processed=1");
        PRI_INFO
    }

    /// `at=warn msg="slow query" duration=1234ms sql="..."`, or a pool near capacity.
    fn slow_query(&mut self, buf: &mut Vec<u8>) -> u8 {
        if self.rng.random_bool(0.7) {
            buf.extend_from_slice(b"at=warn msg=\"slow query\" duration=");
            let d = 500 + (self.rng.random::<f64>().powi(3) * 9_500.0) as u64;
            self.push_u64(buf, d);
            buf.extend_from_slice(
                b"ms sql=\"SELECT items.* FROM items WHERE items.category_id = $1 ORDER BY rank LIMIT 50\"",
            );
            buf.extend_from_slice(b" measure#db.slow_query=");
            self.push_u64(buf, d);
            buf.extend_from_slice(b"ms");
        } else {
            buf.extend_from_slice(b"at=warn msg=\"connection pool near capacity\" sample#db.pool.busy=");
            let busy = self.rng.random_range(8..=10u64);
            self.push_u64(buf, busy);
            buf.extend_from_slice(b" sample#db.pool.size=10");
        }
        PRI_WARNING
    }

    /// Heroku's log-runtime-metrics line for the dyno.
    fn runtime_metrics(&mut self, buf: &mut Vec<u8>, p: usize) -> u8 {
        buf.extend_from_slice(b"source=");
        buf.extend_from_slice(self.procs[p].spec.dyno.as_bytes());
        buf.extend_from_slice(b" dyno=");
        buf.extend_from_slice(self.procs[p].dyno_id.as_bytes());
        let load1 = self.rng.random::<f64>() * 0.8;
        let load5 = load1 * self.rng.random_range(0.7..1.1);
        let rss = self.rng.random_range(180.0..420.0);
        let cache = self.rng.random_range(2.0..40.0);
        buf.extend_from_slice(b" sample#load_avg_1m=");
        self.push_hundredths(buf, load1);
        buf.extend_from_slice(b" sample#load_avg_5m=");
        self.push_hundredths(buf, load5);
        buf.extend_from_slice(b" sample#memory_total=");
        self.push_hundredths(buf, rss + cache);
        buf.extend_from_slice(b"MB sample#memory_rss=");
        self.push_hundredths(buf, rss);
        buf.extend_from_slice(b"MB sample#memory_cache=");
        self.push_hundredths(buf, cache);
        buf.extend_from_slice(b"MB sample#memory_swap=0.00MB");
        PRI_INFO
    }

    /// Sidekiq-style queue gauges.
    fn queue_sample(&mut self, buf: &mut Vec<u8>) -> u8 {
        buf.extend_from_slice(b"at=info sample#queue.size=");
        let size = (self.rng.random::<f64>().powi(3) * 200.0) as u64;
        self.push_u64(buf, size);
        buf.extend_from_slice(b" sample#queue.latency=");
        let latency = (self.rng.random::<f64>().powi(3) * 5_000.0) as u64;
        self.push_u64(buf, latency);
        buf.extend_from_slice(b"ms sample#workers.busy=");
        let busy = self.rng.random_range(0..=10u64);
        self.push_u64(buf, busy);
        PRI_INFO
    }

    fn plain_text(&mut self, buf: &mut Vec<u8>, p: usize) -> u8 {
        let texts = match self.procs[p].spec.role {
            Role::Web => WEB_TEXT,
            Role::Worker => WORKER_TEXT,
        };
        buf.extend_from_slice(texts[self.rng.random_range(0..texts.len())].as_bytes());
        PRI_INFO
    }

    /// The next 3 to 6 lines of process `p` are a stack trace.
    fn start_trace(&mut self, p: usize) {
        self.trace = Some(Trace {
            proc: p,
            frame: self.rng.random_range(0..FRAMES.len()),
            left: self.rng.random_range(3..=6),
        });
    }

    /// A random UUID (v4 layout).
    fn push_uuid(&mut self, buf: &mut Vec<u8>) {
        let v: u128 = self.rng.random();
        // Version 4 in the 13th hex digit, variant 0b10 in the 17th.
        let v = (v & !(0xf << 76)) | (0x4 << 76);
        let v = (v & !(0x3 << 62)) | (0x2 << 62);
        push_uuid(buf, v);
    }

    fn push_u64(&mut self, buf: &mut Vec<u8>, v: u64) {
        buf.extend_from_slice(self.int.format(v).as_bytes());
    }

    /// `12.3`: one decimal.
    fn push_tenths(&mut self, buf: &mut Vec<u8>, v: f64) {
        let t = (v * 10.0).round() as u64;
        self.push_u64(buf, t / 10);
        buf.extend_from_slice(&[b'.', b'0' + (t % 10) as u8]);
    }

    /// `0.21`: two decimals.
    fn push_hundredths(&mut self, buf: &mut Vec<u8>, v: f64) {
        let h = (v * 100.0).round() as u64;
        self.push_u64(buf, h / 100);
        let r = h % 100;
        buf.extend_from_slice(&[b'.', b'0' + (r / 10) as u8, b'0' + (r % 10) as u8]);
    }
}

/// The low `digits` hex digits of `v`, most significant first.
fn push_hex(buf: &mut Vec<u8>, v: u128, digits: u32) {
    for shift in (0..digits).rev() {
        buf.push(b"0123456789abcdef"[((v >> (shift * 4)) & 0xf) as usize]);
    }
}

/// `8-4-4-4-12` hex groups.
fn push_uuid(buf: &mut Vec<u8>, v: u128) {
    push_hex(buf, v >> 96, 8);
    buf.push(b'-');
    push_hex(buf, v >> 80, 4);
    buf.push(b'-');
    push_hex(buf, v >> 64, 4);
    buf.push(b'-');
    push_hex(buf, v >> 48, 4);
    buf.push(b'-');
    push_hex(buf, v, 12);
}

/// Displays a `u128` as a UUID (used once per process at start).
struct Uuid(u128);

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut b = Vec::with_capacity(36);
        push_uuid(&mut b, self.0);
        f.write_str(std::str::from_utf8(&b).map_err(|_| std::fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use weir_ingest::ParseOptions;
    use weir_model::time::micros_from_civil;
    use weir_model::{AppKind, Record};

    use super::*;

    fn lines(seed: u64, n: usize) -> (Vec<u8>, Vec<u8>) {
        let mut gen = AppGen::new(seed, micros_from_civil(2026, 11, 22, 0, 0, 0, 0));
        let mut buf = Vec::new();
        let pris = (0..n).map(|_| gen.next_line(&mut buf)).collect();
        (buf, pris)
    }

    #[test]
    fn same_seed_same_lines_other_seed_other_lines() {
        assert_eq!(lines(3, 2000), lines(3, 2000));
        assert_ne!(lines(3, 2000).0, lines(4, 2000).0);
    }

    #[test]
    fn uuids_and_decimals_are_formatted() {
        let mut b = Vec::new();
        push_uuid(&mut b, 0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(b, b"01234567-89ab-cdef-0011-223344556677");
        let mut gen = AppGen::new(1, 0);
        b.clear();
        gen.push_tenths(&mut b, 3.25);
        b.push(b' ');
        gen.push_hundredths(&mut b, 0.057);
        b.push(b' ');
        gen.push_hundredths(&mut b, 312.4);
        assert_eq!(b, b"3.3 0.06 312.40");
    }

    /// `--kind logfmt` lines hold exactly ten pairs, `--kind l2met` lines four metrics, and
    /// both parse as plain app lines of a web dyno.
    #[test]
    fn logfmt_and_l2met_lines_have_their_pairs_and_metrics() {
        let opts = ParseOptions {
            year: 2026,
            ..ParseOptions::default()
        };
        let mut gen = AppGen::new(5, 0);
        for i in 0..2000 {
            let mut buf = Vec::new();
            let pri = if i % 2 == 0 {
                gen.logfmt_line(&mut buf)
            } else {
                gen.l2met_line(&mut buf)
            };
            assert_eq!(pri, PRI_INFO);
            let raw = buf.strip_suffix(b"\n").expect("one line");
            let line = weir_ingest::parse_line(raw, &opts);
            let Record::App(app) = line.record else {
                panic!("not an app line: {}", String::from_utf8_lossy(raw));
            };
            assert!(line.header.app.unwrap().starts_with("web."));
            if i % 2 == 0 {
                assert_eq!(
                    weir_ingest::kv::kv_pairs(app.message).count(),
                    10,
                    "{}",
                    app.message
                );
            } else {
                let scan = weir_ingest::l2met::for_each_metric(app.message, |_| {});
                assert_eq!((scan.metrics, scan.invalid), (4, 0), "{}", app.message);
            }
        }
    }

    /// Every line parses as a plain application line whose header names the host, the dyno
    /// and its pid; PRIs are `local7` with the severity of the line's level; every kind of
    /// line appears, and stack traces follow their error from the same process.
    #[test]
    fn every_line_parses_as_an_app_line_of_its_dyno() {
        let (text, pris) = lines(9, 20_000);
        let opts = ParseOptions {
            year: 2026,
            ..ParseOptions::default()
        };
        let mut seen = BTreeSet::new();
        let mut prev: Option<(String, String)> = None;
        let mut prev_error = false;
        for (raw, pri) in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).zip(pris) {
            let shown = String::from_utf8_lossy(raw);
            let line = weir_ingest::parse_line(raw, &opts);
            let Record::App(app) = line.record else {
                panic!("not an app line: {:?}\n{shown}", line.record);
            };
            assert_eq!(app.kind, AppKind::Plain, "{shown}");
            let h = line.header;
            let (host, dyno, pid) = (h.host.unwrap(), h.app.unwrap(), h.procid.unwrap());
            let spec = PROCS.iter().find(|p| p.host == host).expect("a known host");
            assert_eq!(dyno, spec.dyno, "{shown}");
            assert!(pid.parse::<u32>().is_ok(), "{shown}");
            assert!(h.timestamp.is_some(), "{shown}");
            let msg = app.message;
            let frame = msg.starts_with("    from /app/");
            if frame {
                assert!(prev_error, "a frame follows an error or a frame: {shown}");
                assert_eq!(
                    prev.as_ref(),
                    Some(&(host.to_string(), pid.to_string())),
                    "{shown}"
                );
            }
            let expected_pri = if msg.starts_with("at=error") || frame {
                PRI_ERR
            } else if msg.starts_with("at=warn") {
                PRI_WARNING
            } else {
                PRI_INFO
            };
            assert_eq!(pri, expected_pri, "{shown}");
            let kind = if frame {
                "frame"
            } else {
                msg.split([' ', '=']).next().unwrap_or("")
            };
            seen.insert((spec.role == Role::Web, kind.to_string()));
            if msg.contains("measure#") {
                seen.insert((true, "measure".into()));
            }
            if msg.starts_with("at=info method=") {
                assert!(
                    msg.contains(" status=") && msg.contains(" request_id="),
                    "{shown}"
                );
                let api_path = msg.contains(" path=/v1/");
                assert_eq!(
                    api_path,
                    spec.app == App::Api && !msg.contains("/healthz"),
                    "{shown}"
                );
            }
            prev_error = msg.starts_with("at=error") || frame;
            prev = Some((host.to_string(), pid.to_string()));
        }
        for kind in ["at", "source", "Starting", "frame"] {
            assert!(
                seen.iter().any(|(_, k)| k == kind),
                "no `{kind}` line in {seen:?}"
            );
        }
        assert!(seen.contains(&(true, "measure".into())));
        assert!(seen.contains(&(false, "at".into())), "worker lines");
    }

    #[test]
    fn times_never_go_back() {
        let mut gen = AppGen::new(1, 1_000_000);
        let mut buf = Vec::new();
        gen.line_at(5_000_000, &mut buf);
        assert_eq!(gen.clock, 5_000_000);
        gen.line_at(4_000_000, &mut buf);
        assert_eq!(gen.clock, 5_000_000);
        gen.next_line(&mut buf);
        assert!(gen.clock >= 5_000_000);
    }
}
