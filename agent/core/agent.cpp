#include "agent.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "../http/http_server.h"
#include "logging.h"
#include "scheduler.h"
#include "self_metrics.h"
#include "snapshot_registry.h"
#include "vigil/collector.h"

namespace vigil {

namespace {

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
    entries.push_back({*settings, std::move(collector).value()});
  }
  return entries;
}

}  // namespace

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

  std::mutex mu;  // serialises reloads against each other and against stop
  Config config;
  std::unique_ptr<CollectorScheduler> scheduler;
  std::unique_ptr<HttpServer> http;

  Impl(AgentOptions o, ExpositionRenderer r, Config c)
      : options(std::move(o)),
        render(std::move(r)),
        self_metrics(options.version, options.revision),
        config(std::move(c)) {}

  void renderMetrics(std::string& body) {
    auto snapshots_now = snapshots.all();
    std::vector<const MetricBatch*> batches;
    std::size_t series = 0;
    for (const auto& s : snapshots_now) {
      batches.push_back(s.get());
      series += s->seriesCount();
    }
    self_metrics.setExportedSeries(static_cast<double>(series));
    MetricBatch self;
    self_metrics.snapshot(self);
    batches.push_back(&self);
    render(batches, body);
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
  s.scheduler = std::make_unique<CollectorScheduler>(std::move(entries).value(), s.config.paths,
                                                     s.snapshots, s.self_metrics);
  s.scheduler->start();

  HttpServerOptions http_options;
  http_options.address = s.config.global.listen_address;
  auto http = std::make_unique<HttpServer>(http_options, s.self_metrics);
  registerRoutes(*http);
  if (Status st = http->start(); !st.isOk()) {
    s.scheduler->stop(std::chrono::milliseconds(500));
    s.scheduler.reset();
    return st;
  }
  s.http = std::move(http);
  spdlog::info("vigil started version={} listen_address={} collectors={}", s.options.version,
               ListenAddress{s.config.global.listen_address.host, s.http->port()}.toString(),
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
  if (config->global.listen_address.toString() != s.config.global.listen_address.toString()) {
    spdlog::warn("listen_address changed to {}; it takes effect at the next restart",
                 config->global.listen_address.toString());
  }
  if (s.scheduler) {
    s.scheduler->stop(std::chrono::milliseconds(1000));
  }
  std::vector<std::string> keep;
  for (const auto& e : *entries) {
    keep.push_back("collector/" + e.settings.name);
  }
  s.snapshots.retainOnly(keep);
  s.scheduler = std::make_unique<CollectorScheduler>(std::move(entries).value(), config->paths,
                                                     s.snapshots, s.self_metrics);
  s.scheduler->start();
  setLogLevel(config->global.log_level);
  s.config = std::move(config).value();
  s.self_metrics.configReload(true, unixNow());
  spdlog::info("configuration reloaded source={}", s.config.source);
  return Status::ok();
}

void Agent::stop(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<CollectorScheduler> scheduler;
  {
    std::lock_guard lock(s.mu);
    http = std::move(s.http);
    scheduler = std::move(s.scheduler);
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
}

void Agent::registerRoutes(HttpServer& http) {
  Impl* impl = impl_.get();
  http.route("/metrics", {"GET"}, [impl](const HttpRequest&, HttpResponse& res) {
    res.body.reserve(64 * 1024);
    impl->renderMetrics(res.body);
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
  });
  http.route("/-/healthy", {"GET", "HEAD"},
             [](const HttpRequest&, HttpResponse& res) { res.body = "vigil is Healthy.\n"; });
  http.route("/-/ready", {"GET", "HEAD"}, [impl](const HttpRequest&, HttpResponse& res) {
    if (impl->ready()) {
      res.body = "vigil is Ready.\n";
    } else {
      res.status = 503;
      res.body = "Service Unavailable\n";
    }
  });
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
