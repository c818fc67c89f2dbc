#include "alertmanager_api.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>

#include "api_envelope.h"
#include "api_time.h"
#include "json_reader.h"
#include "query_api.h"
#include "vigil/clock.h"
#include "vigil/labels_json.h"

namespace vigil {

namespace {

using json = nlohmann::json;

// Alertmanager's errors are JSON strings.
void fail(HttpResponse& res, int status, const std::string& message) {
  res.status = status;
  res.content_type = "application/json";
  res.body = json(message).dump(-1, ' ', false, json::error_handler_t::replace);
}

void respond(HttpResponse& res, const json& body) {
  res.content_type = "application/json";
  res.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<int64_t> timeField(const json& j, const char* name) {
  if (!j.contains(name) || j[name].is_null()) {
    return int64_t{0};
  }
  if (!j[name].is_string()) {
    return invalidArgument(std::string(name) + " must be a date-time string");
  }
  const std::string text = j[name].get<std::string>();
  if (text.empty() || text.starts_with("0001-01-01T00:00:00")) {
    return int64_t{0};  // Go's zero time means "not set"
  }
  auto t = parseApiTime(text);
  if (!t) {
    return invalidArgument(std::string(name) + ": " + t.status().message());
  }
  return *t;
}

// Query flags: "true"/"false", default true.
bool flag(const std::vector<std::pair<std::string, std::string>>& params, const char* name) {
  for (const auto& [k, v] : params) {
    if (k == name) {
      return v != "false";
    }
  }
  return true;
}

Result<std::vector<LabelMatcher>> filters(
    const std::vector<std::pair<std::string, std::string>>& params) {
  std::vector<LabelMatcher> out;
  for (const auto& [k, v] : params) {
    if (k != "filter") {
      continue;
    }
    auto ms = alerting::parseMatchers(v);
    if (!ms) {
      return ms.status();
    }
    for (auto& m : *ms) {
      out.push_back(std::move(m));
    }
  }
  return out;
}

json alertJson(const AlertingService::AlertView& v, int64_t now) {
  const auto& a = v.alert;
  json receivers = json::array();
  for (const auto& r : v.receivers) {
    receivers.push_back({{"name", r}});
  }
  const bool suppressed = !v.silenced_by.empty() || !v.inhibited_by.empty();
  return json{{"labels", labelsJson(a.labels)},
              {"annotations", labelsJson(a.annotations)},
              {"startsAt", formatRfc3339(a.starts_at)},
              {"endsAt", formatRfc3339(a.ends_at)},
              {"updatedAt", formatRfc3339(a.updated_at)},
              {"generatorURL", a.generator_url},
              {"fingerprint", alerting::fingerprintHex(a.fingerprint())},
              {"receivers", receivers},
              {"status",
               {{"state", a.resolvedAt(now) ? "unprocessed"
                          : suppressed      ? "suppressed"
                                            : "active"},
                {"silencedBy", v.silenced_by},
                {"inhibitedBy", v.inhibited_by}}}};
}

// Which alerts a GET asks for: the state flags, the filter matchers and the receiver regex.
struct AlertQuery {
  bool active = true;
  bool silenced = true;
  bool inhibited = true;
  std::vector<LabelMatcher> matchers;
  std::optional<LabelMatcher> receiver;

  bool wants(const AlertingService::AlertView& v) const {
    if (!alerting::matchesAll(matchers, v.alert.labels)) {
      return false;
    }
    if (receiver && std::none_of(v.receivers.begin(), v.receivers.end(),
                                 [&](const std::string& r) { return receiver->matches(r); })) {
      return false;
    }
    const bool is_silenced = !v.silenced_by.empty();
    const bool is_inhibited = !v.inhibited_by.empty();
    if (!active && !is_silenced && !is_inhibited) {
      return false;
    }
    return (silenced || !is_silenced) && (inhibited || !is_inhibited);
  }
};

Result<AlertQuery> alertQuery(const HttpRequest& req) {
  const auto params = parseForm(req.query);
  AlertQuery q;
  q.active = flag(params, "active");
  q.silenced = flag(params, "silenced");
  q.inhibited = flag(params, "inhibited");
  auto ms = filters(params);
  if (!ms) {
    return ms.status();
  }
  q.matchers = std::move(*ms);
  for (const auto& [k, v] : params) {
    if (k == "receiver") {
      auto m = LabelMatcher::create(MatchType::kRegexMatch, "receiver", v);
      if (!m) {
        return m.status();
      }
      q.receiver = std::move(*m);
    }
  }
  return q;
}

// Reads the body of POST /api/v2/alerts straight into alerts, without building a JSON tree
// (that was most of the cost of ingestion). Each alert gets the first problem found in it.
class PostableAlertsReader : public nlohmann::json_sax<json> {
 public:
  struct Item {
    alerting::Alert alert;
    std::string error;  // empty: fine so far
  };
  std::vector<Item> items;
  std::string fatal;  // the body as a whole is wrong

  bool null() override { return value(nullptr); }
  bool boolean(bool) override { return value("a boolean"); }
  bool number_integer(number_integer_t) override { return value("a number"); }
  bool number_unsigned(number_unsigned_t) override { return value("a number"); }
  bool number_float(number_float_t, const string_t&) override { return value("a number"); }
  bool binary(binary_t&) override { return value("binary data"); }
  bool string(string_t& s) override {
    if (skip_ > 0) {
      return true;
    }
    if (depth_ == 3 && map_ != nullptr) {
      map_->push_back({std::move(key_), std::move(s)});
      return true;
    }
    if (depth_ == 2 && in_alert()) {
      if (key_ == "startsAt" || key_ == "endsAt") {
        setTime(s);
      } else if (key_ == "generatorURL") {
        items.back().alert.generator_url = std::move(s);
      } else if (key_ == "labels" || key_ == "annotations") {
        problem(key_ + " must be an object of strings");
      }
      return true;
    }
    return value("a string");
  }
  bool start_object(std::size_t) override {
    if (skip_ > 0) {
      ++skip_;
      return true;
    }
    ++depth_;
    if (depth_ == 1) {
      fatal = "expected a JSON array of alerts";
      return false;
    }
    if (depth_ == 2) {
      items.emplace_back();
      return true;
    }
    if (depth_ == 3 && (key_ == "labels" || key_ == "annotations")) {
      map_name_ = key_;
      map_ = key_ == "labels" ? &items.back().alert.labels : &items.back().alert.annotations;
      // One allocation for a typical alert's labels instead of growing 1, 2, 4, 8.
      map_->reserve(key_ == "labels" ? 8 : 4);
      return true;
    }
    // Any other nested value is not looked at.
    --depth_;
    skip_ = 1;
    return true;
  }
  bool end_object() override {
    if (skip_ > 0) {
      --skip_;
      return true;
    }
    if (depth_ == 3) {
      map_ = nullptr;
    }
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (skip_ > 0) {
      ++skip_;
      return true;
    }
    if (depth_ == 0) {
      depth_ = 1;
      return true;
    }
    if (depth_ == 1) {
      items.emplace_back();
      problem("expected an object");
    } else if (depth_ == 3) {
      problem(map_name_ + "." + key_ + " must be a string");
    } else if (key_ == "labels" || key_ == "annotations") {
      problem(key_ + " must be an object of strings");
    }
    skip_ = 1;
    return true;
  }
  bool end_array() override {
    if (skip_ > 0) {
      --skip_;
      return true;
    }
    --depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (skip_ == 0) {
      key_ = std::move(k);
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    fatal = std::string("invalid JSON: ") + e.what();
    return false;
  }

 private:
  bool in_alert() const { return !items.empty(); }
  void problem(const std::string& message) {
    if (!items.empty() && items.back().error.empty()) {
      items.back().error = message;
    }
  }
  // A scalar where it does not belong (or null, which means "not set").
  bool value(const char* what) {
    if (skip_ > 0) {
      return true;
    }
    if (depth_ == 0) {
      fatal = "expected a JSON array of alerts";
      return false;
    }
    if (depth_ == 1) {
      items.emplace_back();
      problem("expected an object");
    } else if (depth_ == 3) {
      problem(map_name_ + "." + key_ + " must be a string");
    } else if (what != nullptr && (key_ == "labels" || key_ == "annotations")) {
      problem(key_ + " must be an object of strings");
    } else if (what != nullptr && (key_ == "startsAt" || key_ == "endsAt")) {
      problem(key_ + " must be a date-time string");
    }
    return true;
  }
  bool value(std::nullptr_t) { return value(static_cast<const char*>(nullptr)); }
  void setTime(const std::string& text) {
    int64_t& field = key_ == "startsAt" ? items.back().alert.starts_at : items.back().alert.ends_at;
    if (text.empty() || text.starts_with("0001-01-01T00:00:00")) {
      field = 0;  // Go's zero time means "not set"
      return;
    }
    auto t = parseApiTime(text);
    if (!t) {
      problem(key_ + ": " + t.status().message());
      return;
    }
    field = *t;
  }

  int depth_ = 0;  // 1: the array, 2: an alert, 3: its labels or annotations
  int skip_ = 0;   // nesting depth of a value being skipped
  std::string key_;
  std::string map_name_;
  LabelSet* map_ = nullptr;
};

void postAlerts(AlertingService& service, const HttpRequest& req, HttpResponse& res) {
  PostableAlertsReader fast;
  std::optional<PostableAlertsReader> full;  // for JSON beyond the fast path's subset
  bool parsed = true;
  switch (saxParseSimple(req.body, fast)) {
    case SimpleJsonParse::kParsed:
      break;
    case SimpleJsonParse::kStopped:
      parsed = false;
      break;
    case SimpleJsonParse::kUnsupported:
      full.emplace();
      parsed = json::sax_parse(req.body, &*full);
      break;
  }
  PostableAlertsReader& reader = full ? *full : fast;
  if (!parsed || !reader.fatal.empty()) {
    return fail(res, 400, reader.fatal.empty() ? "invalid JSON" : reader.fatal);
  }
  const int64_t now = unixNowMs();
  const int64_t resolve_timeout = service.resolveTimeoutMs();
  std::vector<alerting::Alert> accepted;
  accepted.reserve(reader.items.size());
  std::string errors;
  for (std::size_t i = 0; i < reader.items.size(); ++i) {
    auto& item = reader.items[i];
    if (item.error.empty()) {
      if (Status st = alerting::normaliseIncoming(item.alert, now, resolve_timeout); !st.isOk()) {
        item.error = st.message();
      }
    }
    if (!item.error.empty()) {
      errors += (errors.empty() ? "" : "; ") + std::string("alerts[") + std::to_string(i) +
                "]: " + item.error;
      continue;
    }
    accepted.push_back(std::move(item.alert));
  }
  // As in Alertmanager, the valid alerts are kept even when others are rejected.
  service.receive(std::move(accepted), now);
  if (!errors.empty()) {
    return fail(res, 400, errors);
  }
  res.content_type = "application/json";
  res.body = "";
}

json silenceJson(const alerting::Silence& s, int64_t now) {
  json matchers = json::array();
  for (const auto& m : s.matchers) {
    const bool regex = m.type() == MatchType::kRegexMatch || m.type() == MatchType::kRegexNoMatch;
    const bool equal = m.type() == MatchType::kEqual || m.type() == MatchType::kRegexMatch;
    matchers.push_back(
        {{"name", m.name()}, {"value", m.value()}, {"isRegex", regex}, {"isEqual", equal}});
  }
  return json{{"id", s.id},
              {"status", {{"state", alerting::silenceStateName(s.stateAt(now))}}},
              {"updatedAt", formatRfc3339(s.updated_at)},
              {"comment", s.comment},
              {"createdBy", s.created_by},
              {"startsAt", formatRfc3339(s.starts_at)},
              {"endsAt", formatRfc3339(s.ends_at)},
              {"matchers", matchers},
              {"expireOnResolve", s.expire_on_resolve}};
}

Result<alerting::Silence> silenceFrom(const json& j) {
  if (!j.is_object()) {
    return invalidArgument("expected a silence object");
  }
  alerting::Silence s;
  if (j.contains("id") && j["id"].is_string()) {
    s.id = j["id"].get<std::string>();
  }
  if (!j.contains("matchers") || !j["matchers"].is_array()) {
    return invalidArgument("matchers: expected a list");
  }
  for (const auto& m : j["matchers"]) {
    if (!m.is_object() || !m.contains("name") || !m["name"].is_string() || !m.contains("value") ||
        !m["value"].is_string()) {
      return invalidArgument("matchers: each needs a name and a value");
    }
    const bool regex = m.value("isRegex", false);
    const bool equal = m.value("isEqual", true);
    const MatchType type = regex ? (equal ? MatchType::kRegexMatch : MatchType::kRegexNoMatch)
                                 : (equal ? MatchType::kEqual : MatchType::kNotEqual);
    const std::string name = m["name"].get<std::string>();
    if (!isValidLabelName(name)) {
      return invalidArgument("matchers: invalid label name \"" + name + "\"");
    }
    auto matcher = LabelMatcher::create(type, name, m["value"].get<std::string>());
    if (!matcher) {
      return matcher.status();
    }
    s.matchers.push_back(std::move(*matcher));
  }
  auto starts = timeField(j, "startsAt");
  auto ends = timeField(j, "endsAt");
  if (!starts) {
    return starts.status();
  }
  if (!ends) {
    return ends.status();
  }
  s.starts_at = *starts;
  s.ends_at = *ends;
  s.created_by = j.value("createdBy", "");
  s.comment = j.value("comment", "");
  s.expire_on_resolve = j.value("expireOnResolve", false);
  return s;
}

// Alertmanager's order: active silences by end, then pending by start, then expired, most
// recently ended first.
void sortSilences(std::vector<alerting::Silence>& silences, int64_t now) {
  std::stable_sort(silences.begin(), silences.end(), [now](const auto& a, const auto& b) {
    const auto sa = a.stateAt(now);
    const auto sb = b.stateAt(now);
    if (sa != sb) {
      auto rank = [](alerting::SilenceState s) {
        return s == alerting::SilenceState::kActive    ? 0
               : s == alerting::SilenceState::kPending ? 1
                                                       : 2;
      };
      return rank(sa) < rank(sb);
    }
    switch (sa) {
      case alerting::SilenceState::kActive:
        return a.ends_at < b.ends_at;
      case alerting::SilenceState::kPending:
        return a.starts_at < b.starts_at;
      default:
        return a.ends_at > b.ends_at;
    }
  });
}

}  // namespace

void registerAlertmanagerApi(HttpServer& http, AlertingService& service,
                             AlertmanagerApiOptions options) {
  http.route("/api/v2/alerts", {"GET", "POST"},
             [&service](const HttpRequest& req, HttpResponse& res) {
               if (req.method == "POST") {
                 return postAlerts(service, req, res);
               }
               auto q = alertQuery(req);
               if (!q) {
                 return fail(res, 400, q.status().message());
               }
               const int64_t now = unixNowMs();
               json out = json::array();
               for (const auto& v : service.alerts(now)) {
                 // Resolved alerts are kept a while for grouping but not listed.
                 if (!v.alert.resolvedAt(now) && q->wants(v)) {
                   out.push_back(alertJson(v, now));
                 }
               }
               respond(res, out);
             });
  http.route(
      "/api/v2/alerts/groups", {"GET"}, [&service](const HttpRequest& req, HttpResponse& res) {
        auto q = alertQuery(req);
        if (!q) {
          return fail(res, 400, q.status().message());
        }
        const int64_t now = unixNowMs();
        std::map<uint64_t, AlertingService::AlertView> views;
        for (auto& v : service.alerts(now)) {
          views[v.alert.fingerprint()] = std::move(v);
        }
        json out = json::array();
        for (const auto& g : service.groups()) {
          json alerts = json::array();
          for (const auto& a : g.alerts) {
            auto it = views.find(a.fingerprint());
            if (it != views.end() && !it->second.alert.resolvedAt(now) && q->wants(it->second)) {
              alerts.push_back(alertJson(it->second, now));
            }
          }
          if (!alerts.empty()) {
            out.push_back({{"labels", labelsJson(g.group_labels)},
                           {"receiver", {{"name", g.receiver}}},
                           {"alerts", alerts}});
          }
        }
        respond(res, out);
      });
  http.route(
      "/api/v2/silences", {"GET", "POST"}, [&service](const HttpRequest& req, HttpResponse& res) {
        const int64_t now = unixNowMs();
        if (req.method == "POST") {
          json body;
          try {
            body = json::parse(req.body);
          } catch (const json::exception& e) {
            return fail(res, 400, std::string("invalid JSON: ") + e.what());
          }
          auto silence = silenceFrom(body);
          if (!silence) {
            return fail(res, 400, silence.status().message());
          }
          auto id = service.silences().set(std::move(*silence), now);
          if (!id) {
            return fail(res, id.status().code() == StatusCode::kNotFound ? 404 : 400,
                        id.status().message());
          }
          (void)service.saveState();
          return respond(res, json{{"silenceID", *id}});
        }
        auto ms = filters(parseForm(req.query));
        if (!ms) {
          return fail(res, 400, ms.status().message());
        }
        auto silences = service.silences().list();
        sortSilences(silences, now);
        json out = json::array();
        for (const auto& s : silences) {
          // A filter selects silences having a matcher equal to it, as Alertmanager's does.
          const bool selected = std::all_of(ms->begin(), ms->end(), [&](const LabelMatcher& f) {
            return std::any_of(s.matchers.begin(), s.matchers.end(), [&](const LabelMatcher& m) {
              return m.name() == f.name() && m.value() == f.value() && m.type() == f.type();
            });
          });
          if (selected) {
            out.push_back(silenceJson(s, now));
          }
        }
        respond(res, out);
      });
  http.routePrefix(
      "/api/v2/silence/", {"GET", "DELETE"}, [&service](const HttpRequest& req, HttpResponse& res) {
        const std::string id = req.path.substr(std::string("/api/v2/silence/").size());
        const int64_t now = unixNowMs();
        if (req.method == "DELETE") {
          Status st = service.silences().expire(id, now);
          if (!st.isOk()) {
            return fail(res, st.code() == StatusCode::kNotFound ? 404 : 500, st.message());
          }
          (void)service.saveState();
          res.content_type = "application/json";
          return;
        }
        auto s = service.silences().get(id);
        if (!s) {
          return fail(res, 404, "silence " + id + " not found");
        }
        respond(res, silenceJson(*s, now));
      });
  http.route("/api/v2/receivers", {"GET"}, [&service](const HttpRequest&, HttpResponse& res) {
    json out = json::array();
    for (const auto& r : service.config()->receivers) {
      out.push_back({{"name", r.name}});
    }
    respond(res, out);
  });
  http.route("/api/v2/status", {"GET"}, [&service, options](const HttpRequest&, HttpResponse& res) {
    respond(res, json{{"cluster", {{"status", "disabled"}, {"peers", json::array()}}},
                      {"config", {{"original", service.config()->original}}},
                      {"uptime", formatRfc3339(options.started_at_ms)},
                      {"versionInfo",
                       {{"version", options.version},
                        {"revision", options.revision},
                        {"branch", ""},
                        {"buildUser", ""},
                        {"buildDate", ""},
                        {"goVersion", ""}}}});
  });
}

}  // namespace vigil
