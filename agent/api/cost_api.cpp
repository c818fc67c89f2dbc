#include "cost_api.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "api_envelope.h"
#include "api_time.h"
#include "query_api.h"
#include "vigil/clock.h"
#include "vigil/duration.h"

namespace vigil {

namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxWindows = 8;
constexpr int64_t kMaxWindowMs = 31LL * 24 * 3600 * 1000;
// How far before a window's start a sample may be and still be where the window's spending
// is counted from: a few collection intervals.
constexpr int64_t kBaselineMs = 10 * 60 * 1000;

std::string_view labelValue(const LabelSet& labels, std::string_view name) {
  for (const auto& l : labels) {
    if (l.name == name) {
      return l.value;
    }
  }
  return {};
}

// What a counter rose by within [start, end]: from the newest sample at or before `start`
// (within kBaselineMs), else from its first sample in the window; a drop is a restart from 0.
double increaseOver(const std::vector<Sample>& samples, int64_t start) {
  double increase = 0;
  const Sample* prev = nullptr;
  for (const Sample& s : samples) {
    if (std::isnan(s.v)) {  // a staleness marker: the series stopped
      prev = nullptr;
      continue;
    }
    if (s.t <= start) {
      prev = &s;
      continue;
    }
    if (prev != nullptr) {
      increase += s.v >= prev->v ? s.v - prev->v : s.v;
    }
    prev = &s;
  }
  return increase;
}

struct Spend {
  double cpu = 0;
  double memory = 0;
  double gpu = 0;
  double storage = 0;
  double total() const { return cpu + memory + gpu + storage; }
  void add(std::string_view resource, double v) {
    if (resource == "cpu") {
      cpu += v;
    } else if (resource == "memory") {
      memory += v;
    } else if (resource == "gpu") {
      gpu += v;
    } else if (resource == "storage") {
      storage += v;
    }
  }
  void add(const Spend& o) {
    cpu += o.cpu;
    memory += o.memory;
    gpu += o.gpu;
    storage += o.storage;
  }
  void into(json& j) const {
    j["total"] = total();
    j["cpu"] = cpu;
    j["memory"] = memory;
    j["gpu"] = gpu;
    j["storage"] = storage;
  }
};

json windowJson(const Store& store, int64_t now_ms, int64_t window_ms) {
  const int64_t start = now_ms - window_ms;
  auto select = [&](const char* name) {
    return store.select(
        {*LabelMatcher::create(MatchType::kEqual, std::string(kMetricNameLabel), name)},
        start - kBaselineMs, now_ms);
  };
  int64_t earliest = now_ms;
  std::string node;
  double node_total = 0;
  for (const auto& s : select("vigil_cost_node_dollars_total")) {
    node_total += increaseOver(s.samples, start);
    node = labelValue(*s.labels, "node");
    earliest = std::min(earliest, s.samples.front().t);
  }
  Spend idle;
  for (const auto& s : select("vigil_cost_idle_dollars_total")) {
    idle.add(labelValue(*s.labels, "resource"), increaseOver(s.samples, start));
  }
  std::map<std::string, std::map<std::string, Spend>> pods;  // namespace -> pod -> spend
  for (const auto& s : select("vigil_cost_dollars_total")) {
    pods[std::string(labelValue(*s.labels, "namespace"))][std::string(labelValue(*s.labels, "pod"))]
        .add(labelValue(*s.labels, "resource"), increaseOver(s.samples, start));
  }

  json namespaces = json::array();
  Spend allocated;
  for (const auto& [ns, by_pod] : pods) {
    Spend ns_spend;
    json pod_list = json::array();
    for (const auto& [pod, spend] : by_pod) {
      json p{{"pod", pod}};
      spend.into(p);
      pod_list.push_back(std::move(p));
      ns_spend.add(spend);
    }
    // Biggest spenders first.
    std::stable_sort(pod_list.begin(), pod_list.end(), [](const json& a, const json& b) {
      return a["total"].get<double>() > b["total"].get<double>();
    });
    json n{{"namespace", ns}};
    ns_spend.into(n);
    n["pods"] = std::move(pod_list);
    namespaces.push_back(std::move(n));
    allocated.add(ns_spend);
  }
  std::stable_sort(namespaces.begin(), namespaces.end(), [](const json& a, const json& b) {
    return a["total"].get<double>() > b["total"].get<double>();
  });
  json idle_json;
  idle.into(idle_json);
  json allocated_json;
  allocated.into(allocated_json);
  const int64_t from = std::max(start, earliest);
  return json{{"window", formatDuration(Duration(window_ms))},
              {"start", formatRfc3339(start)},
              {"end", formatRfc3339(now_ms)},
              // Less than the window when vigil (or its retention) has not seen all of it.
              {"coveredSeconds", static_cast<double>(now_ms - from) / 1000},
              {"node", node},
              {"nodeCost", node_total},
              {"allocated", std::move(allocated_json)},
              {"idle", std::move(idle_json)},
              {"namespaces", std::move(namespaces)}};
}

}  // namespace

std::string costSummaryJson(const Store& store, int64_t now_ms,
                            const std::vector<int64_t>& windows_ms) {
  json windows = json::array();
  for (int64_t w : windows_ms) {
    windows.push_back(windowJson(store, now_ms, w));
  }
  return json{{"status", "success"}, {"data", {{"windows", std::move(windows)}}}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

void registerCostApi(HttpServer& http, const Store& store) {
  http.route("/api/v1/cost", {"GET"}, [&store](const HttpRequest& req, HttpResponse& res) {
    int64_t now = unixNowMs();
    std::vector<int64_t> windows;
    for (const auto& [name, value] : parseForm(req.query)) {
      if (name == "time") {
        auto t = parseApiTime(value);
        if (!t) {
          return respondError(res, 400, "bad_data",
                              "invalid parameter \"time\": " + t.status().message());
        }
        now = *t;
      } else if (name == "window") {
        auto d = parseDuration(value);
        if (!d || d->count() <= 0 || d->count() > kMaxWindowMs) {
          return respondError(res, 400, "bad_data",
                              "invalid parameter \"window\": expected a duration from 1ms "
                              "to 31d such as 1h or 1d, got \"" +
                                  value + "\"");
        }
        if (windows.size() == kMaxWindows) {
          return respondError(res, 400, "bad_data", "at most 8 window parameters");
        }
        windows.push_back(d->count());
      } else {
        return respondError(res, 400, "bad_data",
                            "unknown parameter \"" + name + "\" (expected window or time)");
      }
    }
    if (windows.empty()) {
      windows = {3600LL * 1000, 24LL * 3600 * 1000};
    }
    res.content_type = "application/json";
    res.body = costSummaryJson(store, now, windows);
  });
}

}  // namespace vigil
