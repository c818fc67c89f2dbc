// The JSON and form APIs (Alertmanager's alerts and silences, acknowledgements, the query and
// cost APIs) through the server's routing, without sockets. The first byte picks the request;
// the rest is its body (POST) or query string (GET).
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "agent/api/alertmanager_api.h"
#include "agent/api/cost_api.h"
#include "agent/api/escalation_api.h"
#include "agent/api/query_api.h"
#include "agent/core/alerting_service.h"
#include "agent/core/self_metrics.h"
#include "agent/http/http_server.h"
#include "vigil/store.h"

namespace {

// A fresh directory under the system's temporary directory ($TMPDIR), left for the process's
// lifetime: the fuzzer runs until it is stopped.
std::string makeStateDir() {
  std::string path = (std::filesystem::temp_directory_path() / "vigil-fuzz-api-XXXXXX").string();
  const char* made = ::mkdtemp(path.data());
  return made != nullptr ? std::string(made) : std::filesystem::temp_directory_path().string();
}

struct Api {
  vigil::SelfMetrics metrics{"fuzz", "fuzz"};
  std::unique_ptr<vigil::Store> store = vigil::makeMemStore();
  // Its state goes to a directory of its own: the service saves state by writing a temporary
  // file and renaming it over the path (as root, a path of /dev/null was replaced).
  std::string dir = makeStateDir();
  vigil::AlertingService alerting{vigil::defaultAlertingConfig(), dir + "/alerting.json"};
  vigil::HttpServer http{vigil::HttpServerOptions{}, metrics};

  Api() {
    http.setAccessPolicy(vigil::AccessPolicy({}, {}, /*disabled=*/true));
    vigil::registerAlertmanagerApi(http, alerting, {});
    vigil::registerEscalationApi(http, alerting);
    vigil::registerQueryApi(http, *store, {});
    vigil::registerCostApi(http, *store);
    (void)store->append({{"__name__", "up"}, {"job", "node"}}, 1'000, 1);
  }
};

struct Request {
  const char* method;
  const char* path;
  bool body;  // the input is the body; else the query string
};
constexpr Request kRequests[] = {
    {"POST", "/api/v2/alerts", true},        {"GET", "/api/v2/alerts", false},
    {"POST", "/api/v2/silences", true},      {"GET", "/api/v2/silences", false},
    {"GET", "/api/v2/alerts/groups", false}, {"POST", "/api/v1/alerts/abc/ack", true},
    {"GET", "/api/v1/query", false},         {"POST", "/api/v1/query_range", true},
    {"GET", "/api/v1/series", false},        {"GET", "/api/v1/cost", false},
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Api api;
  if (size == 0) {
    return 0;
  }
  const Request& r = kRequests[data[0] % (sizeof kRequests / sizeof kRequests[0])];
  vigil::HttpRequest req;
  req.method = r.method;
  req.path = r.path;
  std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (r.body) {
    req.body = std::move(rest);
    req.headers["content-type"] = req.path.starts_with("/api/v1/query")
                                      ? "application/x-www-form-urlencoded"
                                      : "application/json";
  } else {
    req.query = std::move(rest);
  }
  vigil::HttpResponse res;
  api.http.handle(req, res);
  return 0;
}
