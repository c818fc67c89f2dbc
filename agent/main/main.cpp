// The vigil command: the composition root that wires the agent, its collectors and the
// exporters together.
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "../core/agent.h"
#include "../core/logging.h"
#include "anomaly_command.h"
#include "build_revision.h"
#include "routes_command.h"
#include "template_command.h"
#include "vigil/collector.h"
#include "vigil/exporters/http_client.h"
#include "vigil/exporters/notify.h"
#include "vigil/exporters/remote_write.h"
#include "vigil/exporters/text_format.h"
#include "vigil/rules/rule_file.h"
#include "vigil/rules/unit_test.h"

#ifndef VIGIL_VERSION
#define VIGIL_VERSION "0.0.0"
#endif

namespace {

constexpr const char* kUsage = R"(vigil: a per-node monitoring and alerting agent

Usage:
  vigil run [--config FILE] [--listen-address ADDR] [--data-dir DIR]
  vigil check config FILE
  vigil check rules FILE...
  vigil test rules FILE...
  vigil query [--address HOST:PORT] [--time T] EXPR
  vigil routes [show|test] --config FILE [LABEL=VALUE...]
  vigil template render --template.text=TEXT [--template.data=FILE]
  vigil anomaly score [--detector NAME] FILE.csv
  vigil --version
  vigil --help
  vigil COMMAND --help

Commands:
  run            run the agent (without --config: the embedded default configuration)
  check config   validate a configuration file; exit 0 if valid, 1 with every error otherwise
  check rules    validate Prometheus rule files like promtool check rules
  test rules     run promtool-format unit-test files (promql_expr_test); exit 0 if all pass
  query          evaluate a PromQL expression on a running agent
  routes         print the alert routing tree, or where an alert is routed (as amtool does)
  template       expand a notification template over a notification's data (as amtool does)
  anomaly score  score a timestamp,value CSV with an anomaly detector, online
)";

constexpr const char* kQueryUsage = R"(Usage: vigil query [--address HOST:PORT] [--time T] EXPR

Evaluates EXPR on a running vigil through its /api/v1/query endpoint and prints the result, one
sample per line. --address defaults to 127.0.0.1:9810; --time is Unix seconds or RFC 3339
(default: now). Exits 1 if the query fails.
)";

constexpr const char* kTestUsage = R"(Usage: vigil test rules FILE...

Runs rule unit-test files in promtool's format (`promtool test rules`): input_series in the
expanding notation (with _ and stale), the rule_files they load, alert_rule_test and
promql_expr_test cases. Prints each failure with what was expected and what was evaluated;
exits 0 when every test passes, 1 otherwise.
)";

constexpr const char* kRunUsage =
    R"(Usage: vigil run [--config FILE] [--listen-address ADDR] [--data-dir DIR]

Runs the agent until SIGTERM or SIGINT. SIGHUP or POST /-/reload re-reads the configuration;
an invalid configuration is rejected and the running one stays in force.

Options:
  --config FILE            configuration file (default: the embedded default configuration,
                           which collects this machine and serves on 127.0.0.1:9810)
  --listen-address ADDR    HOST:PORT for the HTTP server, overriding global.listen_address
  --data-dir DIR           state directory, overriding global.data_dir
  --help                   show this help
)";

constexpr const char* kCheckUsage = R"(Usage: vigil check config FILE
       vigil check rules FILE...

Validates a configuration file. Prints nothing but a confirmation and exits 0 if it is valid;
otherwise prints every error as FILE:LINE:COL: message and exits 1.
)";

int usageError(const std::string& message, const char* usage) {
  std::cerr << "vigil: " << message << "\n\n" << usage;
  return 2;
}

bool isHelp(const std::string& arg) { return arg == "--help" || arg == "-h"; }

int checkConfig(const std::vector<std::string>& args) {
  if (args.size() == 1 && isHelp(args[0])) {
    std::cout << kCheckUsage;
    return 0;
  }
  if (args.size() >= 2 && args[0] == "rules") {
    bool ok = true;
    for (std::size_t i = 1; i < args.size(); ++i) {
      std::cout << "Checking " << args[i] << "\n";
      auto result = vigil::promql::loadRuleFile(args[i]);
      if (result.errors.empty()) {
        std::cout << "  SUCCESS: " << result.ruleCount() << " rules found\n\n";
      } else {
        ok = false;
        std::cout << "  FAILED:\n";
        for (const auto& e : result.errors) {
          std::cout << e.toString() << "\n";
        }
        std::cout << "\n";
      }
    }
    return ok ? 0 : 1;
  }
  if (args.size() != 2 || args[0] != "config") {
    return usageError("check takes: config FILE, or rules FILE...", kCheckUsage);
  }
  auto result = vigil::loadConfigFile(args[1], vigil::builtinCollectorInfo());
  if (!result.config) {
    for (const auto& e : result.errors) {
      std::cerr << e.toString() << "\n";
    }
    return 1;
  }
  std::cout << args[1] << ": configuration is valid\n";
  return 0;
}

int testRules(const std::vector<std::string>& args) {
  if (args.size() == 1 && isHelp(args[0])) {
    std::cout << kTestUsage;
    return 0;
  }
  if (args.size() < 2 || args[0] != "rules") {
    return usageError("test takes: rules FILE...", kTestUsage);
  }
  bool ok = true;
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::cout << "Unit Testing:  " << args[i] << "\n";
    auto report = vigil::promql::runUnitTestFile(args[i], std::cout);
    if (report.failures == 0) {
      std::cout << "  SUCCESS\n";
    }
    ok = ok && report.failures == 0;
  }
  return ok ? 0 : 1;
}

int query(const std::vector<std::string>& args) {
  std::string address = "127.0.0.1:9810";
  std::optional<std::string> time;
  std::optional<std::string> expr;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (isHelp(args[i])) {
      std::cout << kQueryUsage;
      return 0;
    }
    if ((args[i] == "--address" || args[i] == "--time") && i + 1 < args.size()) {
      (args[i] == "--address" ? address : time.emplace()) = args[i + 1];
      ++i;
    } else if (!expr && args[i].rfind("--", 0) != 0) {
      expr = args[i];
    } else {
      return usageError("unexpected argument " + args[i], kQueryUsage);
    }
  }
  if (!expr) {
    return usageError("query needs an expression", kQueryUsage);
  }
  auto parsed = vigil::parseListenAddress(address);
  if (!parsed) {
    return usageError("--address: " + parsed.status().message(), kQueryUsage);
  }
  vigil::exporters::HttpClient client("http://" + parsed->toString(), {},
                                      std::chrono::seconds(120));
  vigil::exporters::HttpHeaders form{{"query", *expr}};
  if (time) {
    form.emplace_back("time", *time);
  }
  auto res = client.post("/api/v1/query", {{"User-Agent", "vigil"}},
                         vigil::exporters::formEncode(form), "application/x-www-form-urlencoded");
  if (!res) {
    std::cerr << "vigil query: cannot reach " << address << ": " << res.status().message() << "\n";
    return 1;
  }
  nlohmann::json body = nlohmann::json::parse(res->body, nullptr, false);
  if (body.is_discarded() || body.value("status", "") != "success") {
    std::cerr << "vigil query: "
              << (body.is_discarded() ? res->body : body.value("error", std::string("failed")))
              << "\n";
    return 1;
  }
  const auto& data = body["data"];
  auto labelsText = [](const nlohmann::json& metric) {
    std::string name;
    std::string inner;
    for (auto it = metric.begin(); it != metric.end(); ++it) {
      if (it.key() == "__name__") {
        name = it.value().get<std::string>();
      } else {
        inner += (inner.empty() ? "" : ", ") + it.key() + "=" + it.value().dump();
      }
    }
    return name + "{" + inner + "}";
  };
  const std::string type = data["resultType"];
  if (type == "scalar" || type == "string") {
    std::cout << data["result"][1].get<std::string>() << "\n";
  } else if (type == "vector") {
    for (const auto& s : data["result"]) {
      std::cout << labelsText(s["metric"]) << " => " << s["value"][1].get<std::string>() << " @["
                << s["value"][0].dump() << "]\n";
    }
  } else {
    for (const auto& s : data["result"]) {
      std::cout << labelsText(s["metric"]) << " =>\n";
      for (const auto& p : s["values"]) {
        std::cout << "  " << p[1].get<std::string>() << " @[" << p[0].dump() << "]\n";
      }
    }
  }
  return 0;
}

// glibc's malloc gives threads arenas of their own (up to eight per core) and raises its mmap
// threshold each time a large buffer is freed, so that the transient buffers of scrapes,
// /metrics and rule evaluation come from the arenas and keep them at their peak: in the soak
// benchmark the heap in use was flat while RSS rose by 100 MiB in ten minutes. Two arenas and
// a fixed threshold (large buffers mapped and unmapped) took ten minutes' RSS from 155 to 97
// MiB. A fixed threshold also fixes the trim threshold at 128 KiB, below what one /metrics
// response takes and gives back (its text, its gzip, the self metrics): the heap was shrunk
// and grown again, page faults included, on every scrape (7 % of a node scrape's CPU at 20
// scrapes a second). Half a MiB covers a response of a few thousand series. MALLOC_ARENA_MAX,
// MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ in the environment still win.
void tuneAllocator() {
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) {
    ::mallopt(M_ARENA_MAX, 2);
  }
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) {
    ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  }
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) {
    ::mallopt(M_TRIM_THRESHOLD, 512 * 1024);
  }
}

// The soft limit on open files up to the hard one, as Go's runtime does for Prometheus's own
// exporters: the container collector keeps four or five files open per cgroup (a node with
// 300 containers needs more than systemd's default soft limit of 1,024), and the soft limit
// exists for programs that use select(2), which vigil does not.
void raiseOpenFileLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

int run(const std::vector<std::string>& args) {
  tuneAllocator();
  raiseOpenFileLimit();
  vigil::AgentOptions options;
  options.version = VIGIL_VERSION;
  options.revision = vigil::buildRevision();
  options.alert_forwarder = std::make_shared<vigil::exporters::AlertmanagerForwarder>();
  options.remote_writer = vigil::exporters::makeRemoteWriter();
  options.notifier_factory = [](const std::string& data_dir, const std::string& external_url)
      -> vigil::Result<std::shared_ptr<vigil::alerting::NotificationSink>> {
    vigil::exporters::NotificationServiceOptions notify;
    notify.outbox_dir = data_dir + "/outbox";
    notify.external_url = external_url;
    auto service = vigil::exporters::NotificationService::open(std::move(notify));
    if (!service) {
      return service.status();
    }
    return std::shared_ptr<vigil::alerting::NotificationSink>(std::move(service).value());
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (isHelp(arg)) {
      std::cout << kRunUsage;
      return 0;
    }
    // Accept both "--flag value" and "--flag=value".
    std::string name = arg;
    std::optional<std::string> value;
    if (auto eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    if (name != "--config" && name != "--listen-address" && name != "--data-dir") {
      return usageError("unknown option " + arg, kRunUsage);
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return usageError(name + " needs a value", kRunUsage);
      }
      value = args[++i];
    }
    if (name == "--config") {
      options.config_path = *value;
    } else if (name == "--data-dir") {
      options.data_dir = *value;
    } else {
      auto address = vigil::parseListenAddress(*value);
      if (!address) {
        return usageError("--listen-address: " + address.status().message(), kRunUsage);
      }
      options.listen_address = *address;
    }
  }

  // Signals are taken synchronously by this thread only: block them before any thread starts
  // so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto config = vigil::loadAgentConfig(options);
  if (!config) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  vigil::setupLogging(config->global.log_level, config->global.log_format);

  auto renderer = std::make_shared<vigil::exporters::TextRenderer>();
  auto agent = vigil::Agent::create(
      options, [renderer](std::span<const vigil::MetricBatch* const> batches, std::string& out) {
        renderer->render(batches, out);
      });
  if (!agent) {
    spdlog::error("invalid configuration error=\"{}\"", agent.status().message());
    return 1;
  }
  if (vigil::Status st = (*agent)->start(); !st.isOk()) {
    spdlog::error("cannot start error=\"{}\"", st.message());
    return 1;
  }

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) {
      continue;
    }
    if (sig == SIGHUP) {
      (void)(*agent)->reload();  // logs its own outcome
      continue;
    }
    spdlog::info("shutting down signal={}", strsignal(sig));
    (*agent)->stop(std::chrono::milliseconds(1500));
    spdlog::info("stopped");
    spdlog::shutdown();
    return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (isHelp(command)) {
    std::cout << kUsage;
    return 0;
  }
  if (command == "--version" || command == "version") {
    std::cout << "vigil " << VIGIL_VERSION << " (revision " << vigil::buildRevision() << ")\n";
    return 0;
  }
  if (command == "run") {
    return run(args);
  }
  if (command == "check") {
    return checkConfig(args);
  }
  if (command == "test") {
    return testRules(args);
  }
  if (command == "query") {
    return query(args);
  }
  if (command == "routes") {
    return vigil::routesCommand(args);
  }
  if (command == "anomaly") {
    return vigil::anomalyCommand(args);
  }
  if (command == "template") {
    return vigil::templateCommand(args);
  }
  return usageError("unknown command " + command, kUsage);
}
