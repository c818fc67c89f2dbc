#include "agent.h"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <unordered_set>

#include "../api/alertmanager_api.h"
#include "../api/cost_api.h"
#include "../api/escalation_api.h"
#include "../api/query_api.h"
#include "../api/rules_api.h"
#include "../collectors/push/push_registry.h"
#include "../http/http_server.h"
#include "alerting_service.h"
#include "anomaly_service.h"
#include "clock_watch.h"
#include "logging.h"
#include "rule_manager.h"
#include "scheduler.h"
#include "scrape_phase.h"
#include "self_metrics.h"
#include "snapshot_registry.h"
#include "vigil/clock.h"
#include "vigil/collector.h"
#include "vigil/remote_write.h"
#include "vigil/store.h"
#include "vigil/thread_name.h"

namespace vigil {

namespace {

constexpr std::chrono::milliseconds kRetentionPeriod{10000};
constexpr std::chrono::seconds kReleaseFreeMemoryPeriod{60};

// glibc gives memory back to the system only from the top of each arena, beyond the trim
// threshold main() sets; what is freed below a block still in use (what a reload, a large query
// or startup left behind) stays resident for good. malloc_trim(0) hands every whole free page of
// every arena back (MADV_DONTNEED). Once a minute, not after every scrape: a page given back and
// used again costs a page fault. Measured on a node agent collecting every second: 0.4 MB of
// RSS given back at once, 0.17 MB of it taken again by the next ten scrapes.
void releaseFreeHeapPages() {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

int64_t unixMillis() { return unixNowMs(); }

std::string anomalyModelsPath(const Config& config) {
  return config.global.data_dir + "/anomaly.models";
}

std::string checkpointPath(const Config& config) {
  return config.global.data_dir + "/store.checkpoint";
}

// Where links in notifications point: this agent, by host name (as Alertmanager's default).
std::string externalUrl(const Config& config) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) {
    std::snprintf(host, sizeof host, "localhost");
  }
  return "http://" + std::string(host) + ":" + std::to_string(config.global.listen_address.port);
}

std::string alertStatePath(const Config& config) { return config.global.data_dir + "/alerts.json"; }
std::string alertingStatePath(const Config& config) {
  return config.global.data_dir + "/alerting.json";
}

// The rule groups' own health: every group is a long-running loop.
void appendRuleStats(const std::vector<RuleGroupView>& groups, MetricBatch& out) {
  if (groups.empty()) {
    return;
  }
  auto& duration = out.family("vigil_rule_group_last_duration_seconds",
                              "How long the group's last evaluation took.", MetricType::kGauge);
  auto& last = out.family("vigil_rule_group_last_evaluation_timestamp_seconds",
                          "When the group was last evaluated.", MetricType::kGauge);
  auto& rules = out.family("vigil_rule_group_rules", "Rules in the group.", MetricType::kGauge);
  auto& evaluations = out.family("vigil_rule_group_evaluations_total", "Evaluations of the group.",
                                 MetricType::kCounter);
  auto& failures =
      out.family("vigil_rule_group_evaluation_failures_total",
                 "Evaluations of the group in which a rule failed.", MetricType::kCounter);
  for (const auto& g : groups) {
    const LabelSet labels{{"rule_group", g.group.file + ";" + g.group.name}};
    MetricBatch::add(duration, labels, g.evaluation_seconds);
    MetricBatch::add(last, labels, static_cast<double>(g.last_evaluation_ms) / 1000);
    MetricBatch::add(rules, labels, static_cast<double>(g.group.rules.size()));
    MetricBatch::add(evaluations, labels, static_cast<double>(g.evaluations));
    MetricBatch::add(failures, labels, static_cast<double>(g.failures));
  }
}

void appendStoreStats(const StoreStats& st, MetricBatch& out) {
  out.addSingle("vigil_store_series", "Series held in the in-memory store.", MetricType::kGauge,
                static_cast<double>(st.series));
  out.addSingle("vigil_store_samples", "Samples held in the in-memory store.", MetricType::kGauge,
                static_cast<double>(st.samples));
  out.addSingle("vigil_store_chunk_bytes",
                "Memory held by compressed samples and their chunk headers.", MetricType::kGauge,
                static_cast<double>(st.chunk_bytes));
  out.addSingle("vigil_store_index_bytes",
                "Memory held by labels, postings and per-series bookkeeping.", MetricType::kGauge,
                static_cast<double>(st.index_bytes));
  out.addSingle("vigil_store_chunk_segment_bytes",
                "Memory mapped for closed chunks: their bytes and the room of dropped chunks whose "
                "segment still holds live ones.",
                MetricType::kGauge, static_cast<double>(st.chunk_segment_bytes));
  out.addSingle("vigil_store_head_slab_bytes",
                "Memory mapped for open chunks: their buffers and the free slots of their slabs.",
                MetricType::kGauge, static_cast<double>(st.head_slab_bytes));
  out.addSingle("vigil_store_evictions_total",
                "Chunks dropped before their retention to stay within the memory budget.",
                MetricType::kCounter, static_cast<double>(st.evictions));
  out.addSingle("vigil_store_samples_appended_total", "Samples appended to the store.",
                MetricType::kCounter, static_cast<double>(st.appended));
  auto& rejected = out.family("vigil_store_samples_rejected_total",
                              "Samples the store refused, by reason.", MetricType::kCounter);
  MetricBatch::add(rejected, {{"reason", "duplicate"}}, static_cast<double>(st.rejected_duplicate));
  MetricBatch::add(rejected, {{"reason", "out_of_order"}},
                   static_cast<double>(st.rejected_out_of_order));
  MetricBatch::add(rejected, {{"reason", "clock_step"}},
                   static_cast<double>(st.rejected_clock_step));
}

double unixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Status prepareDataDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return invalidArgument("data directory " + dir + ": cannot create: " + ec.message());
  }
  const std::string probe = dir + "/.vigil-write-test";
  {
    std::ofstream out(probe);
    if (!out) {
      return invalidArgument("data directory " + dir + ": not writable by this user");
    }
  }
  std::filesystem::remove(probe, ec);
  return Status::ok();
}

Result<std::vector<CollectorScheduler::Entry>> buildCollectors(const Config& config) {
  std::vector<CollectorScheduler::Entry> entries;
  for (const CollectorFactory& factory : builtinCollectors()) {
    const CollectorSettings* settings = config.collector(factory.name);
    if (settings == nullptr || !settings->enabled) {
      continue;
    }
    auto collector = factory.create(*settings, config.paths);
    if (!collector) {
      return invalidArgument("collector " + factory.name + ": " + collector.status().message());
    }
    entries.push_back({*settings, std::move(collector).value(), factory.waits_on_network});
  }
  return entries;
}

}  // namespace

AccessPolicy accessPolicy(const WebConfig& web) {
  return AccessPolicy(web.read_tokens, web.admin_tokens, web.auth_disabled_on_loopback);
}

Result<Config> loadAgentConfig(const AgentOptions& options) {
  ConfigParseResult parsed =
      options.config_path
          ? loadConfigFile(*options.config_path, builtinCollectorInfo())
          : parseConfig(embeddedDefaultConfig(), "<embedded default>", builtinCollectorInfo());
  if (!parsed.config) {
    std::string message;
    for (const auto& e : parsed.errors) {
      message += message.empty() ? "" : "\n";
      message += e.toString();
    }
    return invalidArgument(message);
  }
  Config config = std::move(*parsed.config);
  if (options.listen_address) {
    config.global.listen_address = *options.listen_address;
  }
  if (config.web.auth_disabled_on_loopback && !config.global.listen_address.isLoopback()) {
    return invalidArgument("web.authorization.disabled_on_loopback: vigil listens on " +
                           config.global.listen_address.toString() +
                           ", which other machines can reach: authorization can be disabled "
                           "only on a loopback address (127.0.0.1, ::1)");
  }
  if (options.data_dir) {
    config.global.data_dir = *options.data_dir;
  }
  return config;
}

struct Agent::Impl {
  AgentOptions options;
  ExpositionRenderer render;
  SelfMetrics self_metrics;
  SnapshotRegistry snapshots;
  // When /metrics is scraped, for the collectors' rounds to fall on
  // (global.collect_before_scrapes).
  std::shared_ptr<ScrapePhase> scrape_phase = std::make_shared<ScrapePhase>();
  std::atomic<std::size_t> last_body_bytes{0};  // of /metrics, uncompressed
  std::mutex kept_self_batch_mu;
  MetricBatch kept_self_batch;

  std::unique_ptr<Store> store;

  std::mutex mu;  // serialises reloads against each other and against stop
  Config config;
  std::shared_ptr<CollectorScheduler> scheduler;
  // The scheduler whose rounds the followed scraper's scrapes run (global.collect_before_scrapes),
  // read by the /metrics route without the agent's lock, which a reload holds for long.
  std::atomic<std::shared_ptr<CollectorScheduler>> scrape_scheduler;
  std::unique_ptr<RuleManager> rules;
  std::unique_ptr<AlertingService> alerting;
  std::unique_ptr<AnomalyService> anomaly;
  std::unique_ptr<HttpServer> http;

  // Wall-clock steps (see checkClock).
  std::mutex clock_mu;
  ClockWatch clock_watch;

  // The maintenance loop: retention and checkpoints.
  std::thread maintenance;
  std::mutex maintenance_mu;
  std::condition_variable maintenance_cv;
  bool maintenance_stop = false;

  Impl(AgentOptions o, ExpositionRenderer r, Config c)
      : options(std::move(o)),
        render(std::move(r)),
        self_metrics(options.version, options.revision),
        config(std::move(c)) {
    StoreOptions store_options;
    store_options.retention = config.storage.retention;
    store_options.memory_budget_bytes = config.storage.memory_budget_bytes;
    store = makeMemStore(store_options);
  }

  void loadCheckpoint() {
    const std::string path = checkpointPath(config);
    Status st = store->loadCheckpoint(path);
    if (st.isOk()) {
      spdlog::info("store restored from checkpoint path={} series={} samples={}", path,
                   store->stats().series, store->stats().samples);
    } else if (st.code() == StatusCode::kInvalidArgument) {
      // Keep the bad file for a post-mortem, and start empty rather than load garbage.
      const std::string aside = path + ".corrupt-" + std::to_string(unixMillis() / 1000);
      std::error_code ec;
      std::filesystem::rename(path, aside, ec);
      spdlog::error("store checkpoint unusable, starting empty error=\"{}\" moved_to={}",
                    st.message(), aside);
    } else if (st.code() != StatusCode::kNotFound) {
      spdlog::error("cannot read store checkpoint, starting empty error=\"{}\"", st.message());
    }
  }

  void writeCheckpoint() {
    std::string path;
    {
      std::lock_guard lock(mu);
      path = checkpointPath(config);
    }
    const auto started = std::chrono::steady_clock::now();
    Status st = store->saveCheckpoint(path);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    self_metrics.checkpointWritten(st.isOk(), seconds, unixNow());
    if (!st.isOk()) {
      spdlog::error("store checkpoint failed error=\"{}\"", st.message());
    }
    if (options.remote_writer) {
      if (Status pst = options.remote_writer->savePositions(); !pst.isOk()) {
        spdlog::error("saving remote write positions failed error=\"{}\"", pst.message());
      }
    }
    saveAlertState();
    std::lock_guard lock(mu);
    if (anomaly) {
      if (Status st = anomaly->saveModels(anomalyModelsPath(config)); !st.isOk()) {
        spdlog::error("saving anomaly models failed error=\"{}\"", st.message());
      }
    }
  }

  void saveAlertState() {
    std::lock_guard lock(mu);
    if (rules) {
      if (Status st = rules->saveState(alertStatePath(config)); !st.isOk()) {
        spdlog::error("saving alert state failed error=\"{}\"", st.message());
      }
    }
    if (alerting) {
      if (Status st = alerting->saveState(); !st.isOk()) {
        spdlog::error("saving alerting state failed error=\"{}\"", st.message());
      }
    }
  }

  // Alerts from the rule engine go into the alert pipeline.
  AlertSender alertSender() {
    return [this](const std::vector<alerting::Alert>& alerts, int64_t now) {
      if (alerting) {
        alerting->receive(alerts, now);
      }
      if (options.alert_forwarder) {
        options.alert_forwarder->forward(alerts, now);
      }
    };
  }

  // A step back of the wall clock: what the store holds from after the new time would make
  // every new sample out of order until the clock caught up, so it goes.
  void clockStepped(int64_t by_ms, int64_t now_ms) {
    const std::size_t dropped = by_ms < 0 ? store->clockSteppedBack(now_ms - by_ms, now_ms) : 0;
    spdlog::warn(
        "the wall clock stepped {} by {}; {} samples stamped after the new time were dropped",
        by_ms < 0 ? "back" : "forward", formatDuration(Duration(by_ms < 0 ? -by_ms : by_ms)),
        dropped);
    self_metrics.clockJumped(by_ms, dropped);
  }

  // Looks at the wall clock against the monotonic one: at the start of every collection round
  // (before its samples are stamped, so a step back loses none of them) and from the
  // maintenance loop, for an agent with no collectors.
  void checkClock() {
    std::lock_guard lock(clock_mu);
    const int64_t now_ms = unixMillis();
    if (auto step = clock_watch.observe(now_ms, std::chrono::steady_clock::now())) {
      clockStepped(*step, now_ms);
    }
  }

  // The collectors of `c` scheduled and started, in place of any before.
  void startCollectors(std::vector<CollectorScheduler::Entry> entries, const Config& c) {
    scheduler = std::make_shared<CollectorScheduler>(std::move(entries), c.paths, *store, snapshots,
                                                     self_metrics, [this] { checkClock(); });
    if (c.global.collect_before_scrapes) {
      scheduler->followScrapes(scrape_phase);
    }
    scheduler->start();
    scrape_scheduler.store(c.global.collect_before_scrapes ? scheduler : nullptr);
  }

  // A scrape of /metrics from `client` arrived: the collectors' rounds due on it run first.
  void scrapeArrived(std::string_view client) {
    if (scrape_phase->observe(client, ScrapePhase::Clock::now())) {
      if (const auto followed = scrape_scheduler.load()) {
        followed->scrapeArrived();
      }
    }
  }

  void maintenanceLoop() {
    using std::chrono::steady_clock;
    auto last_checkpoint = steady_clock::now();
    auto last_retention = steady_clock::now();
    auto last_release = steady_clock::now();
    checkClock();
    std::unique_lock lock(maintenance_mu);
    while (!maintenance_stop) {
      Duration checkpoint_interval;
      {
        std::lock_guard config_lock(mu);
        checkpoint_interval = config.storage.checkpoint_interval;
      }
      const auto wake =
          std::min(last_retention + kRetentionPeriod, last_checkpoint + checkpoint_interval);
      maintenance_cv.wait_until(lock, wake, [&] { return maintenance_stop; });
      if (maintenance_stop) {
        break;
      }
      lock.unlock();
      checkClock();
      const int64_t now_ms = unixMillis();
      if (steady_clock::now() >= last_retention + kRetentionPeriod) {
        store->enforceRetention(now_ms);
        last_retention = steady_clock::now();
      }
      if (steady_clock::now() >= last_checkpoint + checkpoint_interval) {
        writeCheckpoint();
        last_checkpoint = std::chrono::steady_clock::now();
      }
      // Checked at each retention pass (every 10 s), so it needs no wake-up of its own.
      if (steady_clock::now() >= last_release + kReleaseFreeMemoryPeriod) {
        releaseFreeHeapPages();
        last_release = steady_clock::now();
      }
      lock.lock();
    }
  }

  // vigil's own health metrics, into `self` (recycled: kept from the last time, its families'
  // names, help texts and index come back instead of being allocated and hashed anew).
  void fillSelfBatch(MetricBatch& self) {
    self.recycle();
    self_metrics.snapshot(self);
    appendStoreStats(store->stats(), self);
    {
      std::lock_guard lock(mu);
      if (rules) {
        appendRuleStats(rules->snapshot(), self);
      }
      if (alerting) {
        alerting->appendStats(self);
      }
    }
    if (options.alert_forwarder) {
      options.alert_forwarder->appendStats(self);
    }
    if (options.remote_writer) {
      options.remote_writer->appendStats(self);
    }
    if (anomaly) {
      anomaly->appendStats(self);
    }
    const auto scrapes = scrape_phase->estimate(ScrapePhase::Clock::now());
    self.addSingle("vigil_scrape_interval_seconds",
                   "The interval at which /metrics is scraped, learned from the scrapes' arrivals "
                   "(0 while they do not come at a steady interval): what the collectors' rounds "
                   "fall on (global.collect_before_scrapes).",
                   MetricType::kGauge,
                   scrapes ? std::chrono::duration<double>(scrapes->period).count() : 0.0);
    // Its series are those of the last scrape until a rule, a receiver or a collector comes
    // or goes: the renderer then keeps their text.
    self.sealLayout();
  }

  void renderMetrics(std::string& body) {
    auto snapshots_now = snapshots.all();
    std::vector<const MetricBatch*> batches;
    for (const auto& s : snapshots_now) {
      batches.push_back(s.get());
    }
    // The self metrics' batch is kept between scrapes and recycled: its families' names, help
    // texts and index come back instead of being allocated and hashed anew each time. A scrape
    // that comes while another holds it makes its own.
    std::unique_lock kept_lock(kept_self_batch_mu, std::try_to_lock);
    MetricBatch fresh;
    MetricBatch& self = kept_lock.owns_lock() ? kept_self_batch : fresh;
    fillSelfBatch(self);
    batches.push_back(&self);
    // Room for a body like the last one (plus some), so rendering appends without regrowing
    // and copying the text a dozen times on every scrape.
    const std::size_t expected = last_body_bytes.load(std::memory_order_relaxed);
    body.reserve(expected + expected / 8);
    render(batches, body);
    last_body_bytes.store(body.size(), std::memory_order_relaxed);
    // Counted once the batches are rendered, when their families are in the cache (before, it
    // cost a cache miss per family), for the next scrape to report: the gauge says what the
    // last scrape served.
    batches.pop_back();  // the self metrics
    std::size_t series = 0;
    for (const MetricBatch* b : batches) {
      series += b->seriesCount();
    }
    self_metrics.setExportedSeries(static_cast<double>(series));
  }

  // The endpoints of `c` for the remote writer, with its external labels.
  void configureRemoteWrite(const Config& c) {
    if (!options.remote_writer) {
      return;
    }
    std::vector<Label> external;
    for (const auto& [name, value] : c.global.external_labels) {
      external.push_back({name, value});
    }
    options.remote_writer->configure(
        c.remote_write ? *c.remote_write : std::vector<RemoteWriteConfig>{}, external);
  }

  // What the collectors said their metrics are, for the metadata sent with remote write.
  std::vector<MetricMetadata> metricMetadata() {
    std::vector<MetricMetadata> out;
    std::unordered_set<std::string> seen;
    for (const auto& batch : snapshots.all()) {
      for (const MetricFamily& f : batch->families()) {
        if (seen.insert(f.name).second) {
          out.push_back({f.name, f.type, f.help});
        }
      }
    }
    return out;
  }

  bool ready() {
    std::lock_guard lock(mu);
    return scheduler && scheduler->firstRoundDone();
  }
};

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Agent::~Agent() { stop(std::chrono::milliseconds(1000)); }

Result<std::unique_ptr<Agent>> Agent::create(AgentOptions options, ExpositionRenderer render) {
  auto config = loadAgentConfig(options);
  if (!config) {
    return config.status();
  }
  auto impl =
      std::make_unique<Impl>(std::move(options), std::move(render), std::move(config).value());
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

Status Agent::start() {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  VIGIL_RETURN_IF_ERROR(prepareDataDir(s.config.global.data_dir));
  auto entries = buildCollectors(s.config);
  if (!entries) {
    return entries.status();
  }
  std::shared_ptr<alerting::NotificationSink> notifier;
  if (s.options.notifier_factory) {
    auto made = s.options.notifier_factory(s.config.global.data_dir, externalUrl(s.config));
    if (!made) {
      return made.status();
    }
    notifier = std::move(made).value();
  }
  s.alerting = std::make_unique<AlertingService>(s.config.alerting, alertingStatePath(s.config),
                                                 std::move(notifier));
  if (s.options.alert_forwarder) {
    s.options.alert_forwarder->setTargets(s.config.alertmanagers
                                              ? *s.config.alertmanagers
                                              : std::vector<alerting::AlertmanagerTarget>{});
  }
  if (Status st = s.alerting->loadState(); !st.isOk()) {
    spdlog::error("{}", st.message());
  }
  auto rules = RuleManager::create(s.config.rule_files, s.config.global.evaluation_interval,
                                   *s.store, s.config.global.external_labels, s.alertSender());
  if (!rules) {
    return rules.status();
  }
  s.rules = std::move(rules).value();
  if (Status st = s.rules->loadState(alertStatePath(s.config)); !st.isOk()) {
    spdlog::error("{}", st.message());
  }
  s.loadCheckpoint();
  if (s.options.remote_writer) {
    s.options.remote_writer->attach(*s.store, s.config.global.data_dir,
                                    [impl = impl_.get()] { return impl->metricMetadata(); });
    s.configureRemoteWrite(s.config);
  }
  s.startCollectors(std::move(entries).value(), s.config);

  HttpServerOptions http_options;
  http_options.address = s.config.global.listen_address;
  http_options.tls = s.config.web.tls;
  http_options.requests_per_second_per_client = s.config.web.requests_per_second_per_client;
  http_options.burst = s.config.web.burst;
  http_options.max_connections = s.config.web.max_connections;
  http_options.gzip = s.config.web.gzip;
  auto http = std::make_unique<HttpServer>(http_options, s.self_metrics);
  http->setAccessPolicy(accessPolicy(s.config.web));
  registerRoutes(*http);
  if (Status st = http->start(); !st.isOk()) {
    s.scrape_scheduler.store(nullptr);
    s.scheduler->stop(std::chrono::milliseconds(500));
    s.scheduler.reset();
    return st;
  }
  s.http = std::move(http);
  s.alerting->start();
  s.rules->start();
  s.anomaly = std::make_unique<AnomalyService>(*s.store, s.snapshots, s.config.anomaly,
                                               s.config.global.collection_interval);
  if (Status st = s.anomaly->loadModels(anomalyModelsPath(s.config)); !st.isOk()) {
    spdlog::error("{}; starting with fresh models", st.message());
  }
  s.anomaly->start();
  s.maintenance = std::thread([impl = impl_.get()] {
    nameThisThread("maint");
    impl->maintenanceLoop();
  });
  spdlog::info("vigil started version={} listen_address={} rules={} collectors={}",
               s.options.version,
               ListenAddress{s.config.global.listen_address.host, s.http->port()}.toString(),
               s.rules->ruleCount(),
               std::count_if(s.config.collectors.begin(), s.config.collectors.end(),
                             [](const CollectorSettings& c) { return c.enabled; }));
  return Status::ok();
}

Status Agent::reload() {
  Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  auto fail = [&](const Status& status) {
    s.self_metrics.configReload(false, unixNow());
    spdlog::error("configuration reload failed, keeping the running configuration error=\"{}\"",
                  status.message());
    return status;
  };
  auto config = loadAgentConfig(s.options);
  if (!config) {
    return fail(config.status());
  }
  if (Status st = prepareDataDir(config->global.data_dir); !st.isOk()) {
    return fail(st);
  }
  auto entries = buildCollectors(*config);
  if (!entries) {
    return fail(entries.status());
  }
  auto rules = RuleManager::create(config->rule_files, config->global.evaluation_interval, *s.store,
                                   config->global.external_labels, s.alertSender());
  if (!rules) {
    return fail(rules.status());
  }
  if (s.rules) {
    s.rules->stop();
    // Alerts of rules that are still there keep their state across the reload.
    const std::string state_path = alertStatePath(s.config);
    (void)s.rules->saveState(state_path);
    (void)(*rules)->loadState(state_path);
  }
  s.rules = std::move(rules).value();
  s.rules->start();
  if (s.alerting) {
    s.alerting->reconfigure(config->alerting);
  }
  if (s.options.alert_forwarder) {
    s.options.alert_forwarder->setTargets(config->alertmanagers
                                              ? *config->alertmanagers
                                              : std::vector<alerting::AlertmanagerTarget>{});
  }
  s.configureRemoteWrite(*config);
  if (config->global.listen_address.toString() != s.config.global.listen_address.toString()) {
    spdlog::warn("listen_address changed to {}; it takes effect at the next restart",
                 config->global.listen_address.toString());
  }
  // New tokens and web.compression apply at once; TLS files that changed content are picked up
  // on their own, other files or settings at the next restart.
  if (s.http) {
    s.http->setAccessPolicy(accessPolicy(config->web));
    s.http->setGzip(config->web.gzip);
  }
  if (config->web.tls.has_value() != s.config.web.tls.has_value() ||
      (config->web.tls && (config->web.tls->cert_file != s.config.web.tls->cert_file ||
                           config->web.tls->key_file != s.config.web.tls->key_file))) {
    spdlog::warn("web.tls_server_config changed; it takes effect at the next restart");
  }
  if (s.scheduler) {
    s.scheduler->stop(std::chrono::milliseconds(1000));
  }
  std::vector<std::string> keep;
  for (const auto& e : *entries) {
    keep.push_back("collector/" + e.settings.name);
  }
  keep.push_back(AnomalyService::kSource);
  s.snapshots.retainOnly(keep);
  if (s.anomaly) {
    s.anomaly->reconfigure(config->anomaly, config->global.collection_interval);
  }
  // Collectors switched off: their series end now, with staleness markers.
  for (const auto& old : s.config.collectors) {
    const std::string name = "collector/" + old.name;
    if (old.enabled && std::find(keep.begin(), keep.end(), name) == keep.end()) {
      s.store->retireSource(s.store->registerSource(name), unixMillis());
    }
  }
  s.store->setLimits(config->storage.retention, config->storage.memory_budget_bytes);
  s.startCollectors(std::move(entries).value(), *config);
  setLogLevel(config->global.log_level);
  s.config = std::move(config).value();
  s.self_metrics.configReload(true, unixNow());
  spdlog::info("configuration reloaded source={}", s.config.source);
  return Status::ok();
}

void Agent::stop(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  std::unique_ptr<HttpServer> http;
  std::shared_ptr<CollectorScheduler> scheduler;
  std::unique_ptr<RuleManager> rules;
  {
    std::lock_guard lock(s.mu);
    http = std::move(s.http);
    s.scrape_scheduler.store(nullptr);
    scheduler = std::move(s.scheduler);
    rules = std::move(s.rules);
  }
  if (rules) {
    rules->stop();
    if (Status st = rules->saveState(alertStatePath(s.config)); !st.isOk()) {
      spdlog::error("saving alert state failed error=\"{}\"", st.message());
    }
  }
  if (s.anomaly) {
    s.anomaly->stop();
  }
  if (s.alerting) {
    s.alerting->stop();
    if (Status st = s.alerting->saveState(); !st.isOk()) {
      spdlog::error("saving alerting state failed error=\"{}\"", st.message());
    }
  }
  if (!http && !scheduler) {
    return;
  }
  // The HTTP server first, outside the lock: an in-flight /-/reload needs the lock to finish.
  if (http) {
    http->stop();
  }
  if (scheduler && !scheduler->stop(grace)) {
    spdlog::warn("a collector was still running at shutdown; not waiting for it");
  }
  if (s.options.remote_writer) {
    // What was not acknowledged stays in the store checkpoint below, sent after the restart.
    s.options.remote_writer->stop();
  }
  if (s.maintenance.joinable()) {
    {
      std::lock_guard lock(s.maintenance_mu);
      s.maintenance_stop = true;
    }
    s.maintenance_cv.notify_all();
    s.maintenance.join();
    // Everything collected up to now survives the restart.
    s.writeCheckpoint();
  }
}

void Agent::registerRoutes(HttpServer& http) {
  Impl* impl = impl_.get();
  http.route("/metrics", {"GET"}, [impl](const HttpRequest& req, HttpResponse& res) {
    impl->scrapeArrived(req.client);
    impl->renderMetrics(res.body);
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  });
  http.route(
      "/-/healthy", {"GET", "HEAD"},
      [](const HttpRequest&, HttpResponse& res) { res.body = "vigil is Healthy.\n"; },
      Access::kPublic);
  http.route(
      "/-/ready", {"GET", "HEAD"},
      [impl](const HttpRequest&, HttpResponse& res) {
        if (impl->ready()) {
          res.body = "vigil is Ready.\n";
        } else {
          res.status = 503;
          res.body = "Service Unavailable\n";
        }
      },
      Access::kPublic);
  registerRulesApi(http, [impl] {
    std::lock_guard lock(impl->mu);
    return impl->rules ? impl->rules->snapshot() : std::vector<RuleGroupView>{};
  });
  QueryApiOptions api;
  api.version = impl->options.version;
  api.revision = impl->options.revision;
  registerQueryApi(http, *impl->store, api);
  registerCostApi(http, *impl->store);
  registerAlertmanagerApi(
      http, *impl->alerting,
      AlertmanagerApiOptions{impl->options.version, impl->options.revision, unixMillis()});
  registerEscalationApi(http, *impl->alerting);
  // Pushgateway-style ingest: the push collector publishes what is here every cycle.
  // The families vigil exports itself, for pushes to keep their types: the collectors' (but
  // the push collector's, which holds what was pushed) and its own health metrics as the last
  // scrape had them, or as they are now when no scrape has come yet.
  const auto exported =
      [impl](const std::string& name) -> std::optional<collectors::PushRegistry::ExportedFamily> {
    if (auto found = impl->snapshots.findFamily(name, "collector/push")) {
      std::string exporter = found->first;
      if (exporter.rfind("collector/", 0) == 0) {
        exporter = "vigil's collector " + exporter.substr(std::string_view("collector/").size());
      }
      return collectors::PushRegistry::ExportedFamily{found->second, std::move(exporter)};
    }
    std::lock_guard lock(impl->kept_self_batch_mu);
    if (impl->kept_self_batch.empty()) {
      impl->fillSelfBatch(impl->kept_self_batch);
    }
    for (const MetricFamily& f : impl->kept_self_batch.families()) {
      if (f.name == name) {
        return collectors::PushRegistry::ExportedFamily{f.type, "vigil's own health metrics"};
      }
    }
    return std::nullopt;
  };
  const HttpHandler push = [exported](const HttpRequest& req, HttpResponse& res) {
    auto& registry = collectors::PushRegistry::instance();
    auto key = collectors::PushRegistry::groupingKey(
        std::string_view(req.path).substr(std::string_view("/metrics/").size()));
    if (!key) {
      res.status = 400;
      res.body = key.status().message() + "\n";
      return;
    }
    if (req.method == "DELETE") {
      (void)registry.remove(*key);  // deleting what is not there is fine
      res.status = 202;
      return;
    }
    // Clients may gzip their bodies, as the Pushgateway accepts them.
    std::string encoding = req.header("content-encoding");
    std::transform(encoding.begin(), encoding.end(), encoding.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::erase_if(encoding, [](char c) { return c == ' ' || c == '\t'; });
    std::optional<std::string> decompressed;
    if (encoding == "gzip" || encoding == "x-gzip") {
      auto inflated = gzipDecompress(req.body, collectors::PushRegistry::kMaxBodyBytes);
      if (!inflated) {
        res.status = 400;
        res.body = "push rejected: " + inflated.status().message() + "\n";
        return;
      }
      decompressed = std::move(inflated).value();
    } else if (!encoding.empty() && encoding != "identity") {
      res.status = 415;
      res.body = "push rejected: Content-Encoding " + req.header("content-encoding") +
                 " is not supported; send gzip or identity\n";
      return;
    }
    const std::string& body = decompressed ? *decompressed : req.body;
    auto type = req.headers.find("content-type");
    Status st = registry.push(*key, body, type != req.headers.end() ? type->second : "",
                              req.method == "PUT", unixMillis(), exported);
    if (!st.isOk()) {
      res.status = st.code() == StatusCode::kResourceExhausted ? 429 : 400;
      res.body = "push rejected: " + st.message() + "\n";
    }
  };
  // A job name with a slash comes base64url-encoded, after job@base64.
  for (const char* prefix : {"/metrics/job/", "/metrics/job@base64/"}) {
    http.routePrefix(prefix, {"PUT", "POST", "DELETE"}, push);
  }
  http.route("/-/reload", {"POST", "PUT"}, [this](const HttpRequest&, HttpResponse& res) {
    Status status = reload();
    if (!status.isOk()) {
      res.status = 500;
      res.body = "failed to reload config: " + status.message() + "\n";
    }
  });
}

uint16_t Agent::httpPort() const { return impl_->http ? impl_->http->port() : 0; }

const Config& Agent::config() const { return impl_->config; }

}  // namespace vigil
