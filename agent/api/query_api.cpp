#include "query_api.h"

#include "api_envelope.h"
#include "api_time.h"
#include "json_writer.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <set>

#include "vigil/clock.h"
#include "vigil/rules/promql_engine.h"
#include "vigil/rules/promql_parser.h"

namespace vigil {

namespace {

using json = nlohmann::json;

// application/x-www-form-urlencoded, as Prometheus's API accepts in query strings and bodies:
// '+' is a space, then %XX escapes (so "%2B" stays a plus).
std::string decode(std::string_view s) {
  std::string spaced(s);
  std::replace(spaced.begin(), spaced.end(), '+', ' ');
  return percentDecode(spaced);
}

json timestamp(int64_t ms) {
  // Seconds with millisecond precision, as a JSON number: 1435781451.781
  if (ms % 1000 == 0) {
    return ms / 1000;
  }
  return static_cast<double>(ms) / 1000;
}

json metricJson(const LabelSet& labels) {
  json m = json::object();
  for (const auto& l : labels) {
    m[l.name] = l.value;
  }
  return m;
}

struct ApiError {
  int status;
  std::string type;
  std::string message;
};

void respondApiError(HttpResponse& res, const ApiError& e) {
  respondError(res, e.status, e.type, e.message);
}

class Params {
 public:
  explicit Params(const HttpRequest& req) {
    for (auto& kv : parseForm(req.query)) {
      values_.push_back(std::move(kv));
    }
    if (req.method == "POST" &&
        req.header("content-type").find("application/x-www-form-urlencoded") != std::string::npos) {
      for (auto& kv : parseForm(req.body)) {
        values_.push_back(std::move(kv));
      }
    }
  }
  std::optional<std::string> get(const std::string& name) const {
    for (const auto& [n, v] : values_) {
      if (n == name) {
        return v;
      }
    }
    return std::nullopt;
  }
  std::vector<std::string> all(const std::string& name) const {
    std::vector<std::string> out;
    for (const auto& [n, v] : values_) {
      if (n == name) {
        out.push_back(v);
      }
    }
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

json valueJson(const promql::Value& value) {
  if (auto* s = std::get_if<promql::Scalar>(&value)) {
    return json{{"resultType", "scalar"},
                {"result", json::array({timestamp(s->t), formatPlainFloat(s->v)})}};
  }
  if (auto* s = std::get_if<promql::String>(&value)) {
    return json{{"resultType", "string"}, {"result", json::array({timestamp(s->t), s->v})}};
  }
  if (auto* v = std::get_if<promql::Vector>(&value)) {
    json result = json::array();
    for (const auto& s : *v) {
      result.push_back({{"metric", metricJson(s.metric)},
                        {"value", json::array({timestamp(s.t), formatPlainFloat(s.v)})}});
    }
    return json{{"resultType", "vector"}, {"result", result}};
  }
  json result = json::array();
  for (const auto& series : std::get<promql::Matrix>(value)) {
    json values = json::array();
    for (const auto& p : series.points) {
      values.push_back(json::array({timestamp(p.t), formatPlainFloat(p.v)}));
    }
    result.push_back({{"metric", metricJson(series.metric)}, {"values", values}});
  }
  return json{{"resultType", "matrix"}, {"result", result}};
}

// Query results are written straight into the response body: building them as a JSON tree
// first was a third of a query's CPU. The output is byte for byte what the tree gave (keys in
// sorted order, shortest numbers, invalid UTF-8 replaced by U+FFFD).
char* writeTimestamp(char* first, int64_t ms) {
  constexpr std::size_t kRoom = 32;
  return ms % 1000 == 0 ? std::to_chars(first, first + kRoom, ms / 1000).ptr
                        : std::to_chars(first, first + kRoom, static_cast<double>(ms) / 1000).ptr;
}

void appendMetric(std::string& out, const LabelSet& labels) {
  out += '{';
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    appendJsonString(out, labels[i].name);
    out += ':';
    appendJsonString(out, labels[i].value);
  }
  out += '}';
}

// A point is put together in one buffer and appended once: answers hold millions.
void appendPoint(std::string& out, int64_t t, double v, bool leading_comma = false) {
  char buf[kMaxPlainFloatChars + 40];
  char* p = buf;
  if (leading_comma) {
    *p++ = ',';
  }
  *p++ = '[';
  p = writeTimestamp(p, t);
  *p++ = ',';
  *p++ = '"';
  p = writePlainFloat(p, v);
  *p++ = '"';
  *p++ = ']';
  out.append(buf, p);
}

// The whole success response for a query's value.
void respondValue(HttpResponse& res, const promql::Value& value) {
  const auto* vec = std::get_if<promql::Vector>(&value);
  const auto* mat = std::get_if<promql::Matrix>(&value);
  if (vec == nullptr && mat == nullptr) {
    return respondData(res, valueJson(value));
  }
  std::string& out = res.body;
  out.clear();
  out += "{\"data\":{\"result\":[";
  if (vec != nullptr) {
    for (std::size_t i = 0; i < vec->size(); ++i) {
      const auto& s = (*vec)[i];
      out += i > 0 ? ",{\"metric\":" : "{\"metric\":";
      appendMetric(out, s.metric);
      out += ",\"value\":";
      appendPoint(out, s.t, s.v);
      out += '}';
    }
  } else {
    std::size_t points = 0;
    for (const auto& series : *mat) {
      points += series.points.size();
    }
    out.reserve(points * 32 + mat->size() * 256);  // a guess that saves most regrowth copies
    for (std::size_t i = 0; i < mat->size(); ++i) {
      const auto& series = (*mat)[i];
      out += i > 0 ? ",{\"metric\":" : "{\"metric\":";
      appendMetric(out, series.metric);
      out += ",\"values\":[";
      for (std::size_t k = 0; k < series.points.size(); ++k) {
        appendPoint(out, series.points[k].t, series.points[k].v, k > 0);
      }
      out += "]}";
    }
  }
  out += vec != nullptr ? "],\"resultType\":\"vector\"},\"status\":\"success\"}"
                        : "],\"resultType\":\"matrix\"},\"status\":\"success\"}";
  res.content_type = "application/json";
}

ApiError executionError(const Status& st) {
  if (st.code() == StatusCode::kDeadlineExceeded) {
    return {503, "timeout", st.message()};
  }
  return {422, "execution", st.message()};
}

// The engine options for one request: the server's, with the timeout shortened by the
// request's `timeout` parameter.
Result<promql::EngineOptions> requestOptions(promql::EngineOptions base, const Params& params) {
  if (auto timeout = params.get("timeout")) {
    auto ms = parseApiDuration(*timeout);
    if (!ms || *ms <= 0) {
      return invalidArgument("invalid parameter \"timeout\": cannot parse \"" + *timeout +
                             "\" to a valid duration");
    }
    if (base.timeout.count() == 0 || *ms < base.timeout.count()) {
      base.timeout = std::chrono::milliseconds(*ms);
    }
  }
  return base;
}

// Parses a query and the request's engine options; the error to answer with, if any.
std::optional<ApiError> prepareQuery(const std::string& query, const Params& params,
                                     const promql::EngineOptions& base, promql::ParseResult& parsed,
                                     promql::EngineOptions& options) {
  parsed = promql::parse(query);
  if (!parsed.expr) {
    return ApiError{400, "bad_data", "invalid parameter \"query\": " + parsed.error->toString()};
  }
  auto request_options = requestOptions(base, params);
  if (!request_options) {
    return ApiError{400, "bad_data", request_options.status().message()};
  }
  options = *request_options;
  return std::nullopt;
}

std::vector<std::vector<LabelMatcher>> parseMatchers(const std::vector<std::string>& selectors,
                                                     std::optional<ApiError>& error) {
  std::vector<std::vector<LabelMatcher>> out;
  for (const auto& text : selectors) {
    auto parsed = promql::parse(text);
    if (!parsed.expr || parsed.expr->kind != promql::ExprKind::kVectorSelector) {
      error = ApiError{400, "bad_data",
                       "invalid parameter \"match[]\": " +
                           (parsed.error ? parsed.error->toString() : "not a series selector")};
      return {};
    }
    out.push_back(static_cast<const promql::VectorSelector&>(*parsed.expr).matchers);
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parseForm(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!text.empty()) {
    auto amp = text.find('&');
    std::string_view pair = text.substr(0, amp);
    auto eq = pair.find('=');
    if (!pair.empty()) {
      out.emplace_back(decode(pair.substr(0, eq)),
                       eq == std::string_view::npos ? "" : decode(pair.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) {
      break;
    }
    text.remove_prefix(amp + 1);
  }
  return out;
}

void registerQueryApi(HttpServer& http, const Store& store, QueryApiOptions options) {
  promql::EngineOptions engine_options;
  engine_options.lookback = options.lookback;
  engine_options.max_samples = options.max_samples;
  engine_options.timeout = options.timeout;

  http.route(
      "/api/v1/query", {"GET", "POST"},
      [&store, engine_options](const HttpRequest& req, HttpResponse& res) {
        Params params(req);
        auto query = params.get("query");
        if (!query) {
          return respondApiError(res, {400, "bad_data", "invalid parameter \"query\": missing"});
        }
        int64_t t = unixNowMs();
        if (auto time = params.get("time")) {
          auto parsed = parseApiTime(*time);
          if (!parsed) {
            return respondApiError(
                res, {400, "bad_data", "invalid parameter \"time\": " + parsed.status().message()});
          }
          t = *parsed;
        }
        promql::ParseResult expr;
        promql::EngineOptions request_options;
        if (auto error = prepareQuery(*query, params, engine_options, expr, request_options)) {
          return respondApiError(res, *error);
        }
        promql::Engine engine(store, request_options);
        auto value = engine.instant(*expr.expr, t);
        if (!value) {
          return respondApiError(res, executionError(value.status()));
        }
        respondValue(res, *value);
      },
      Access::kRead);

  http.route(
      "/api/v1/query_range", {"GET", "POST"},
      [&store, engine_options, options](const HttpRequest& req, HttpResponse& res) {
        Params params(req);
        auto query = params.get("query");
        auto start = params.get("start");
        auto end = params.get("end");
        auto step = params.get("step");
        for (const auto& [name, v] : {std::pair{"query", query}, std::pair{"start", start},
                                      std::pair{"end", end}, std::pair{"step", step}}) {
          if (!v) {
            return respondApiError(
                res, {400, "bad_data", std::string("invalid parameter \"") + name + "\": missing"});
          }
        }
        auto s = parseApiTime(*start);
        auto e = parseApiTime(*end);
        auto st = parseApiDuration(*step);
        if (!s || !e || !st) {
          const Status& bad = !s ? s.status() : !e ? e.status() : st.status();
          return respondApiError(res, {400, "bad_data", bad.message()});
        }
        if (*e < *s) {
          return respondApiError(res,
                                 {400, "bad_data", "end timestamp must not be before start time"});
        }
        if (*st <= 0) {
          return respondApiError(res, {400, "bad_data",
                                       "zero or negative query resolution step widths are "
                                       "not accepted. Try a positive integer"});
        }
        int64_t span = 0;
        if (__builtin_sub_overflow(*e, *s, &span) ||
            span / *st + 1 > static_cast<int64_t>(options.max_points_per_series)) {
          return respondApiError(res, {400, "bad_data",
                                       "exceeded maximum resolution of 11,000 points per "
                                       "timeseries. Try decreasing the query resolution "
                                       "(?step=XX)"});
        }
        promql::ParseResult expr;
        promql::EngineOptions request_options;
        if (auto error = prepareQuery(*query, params, engine_options, expr, request_options)) {
          return respondApiError(res, *error);
        }
        promql::Engine engine(store, request_options);
        auto matrix = engine.range(*expr.expr, *s, *e, *st);
        if (!matrix) {
          return respondApiError(res, executionError(matrix.status()));
        }
        respondValue(res, promql::Value(std::move(*matrix)));
      },
      Access::kRead);

  http.route(
      "/api/v1/series", {"GET", "POST"},
      [&store](const HttpRequest& req, HttpResponse& res) {
        Params params(req);
        auto selectors = params.all("match[]");
        if (selectors.empty()) {
          return respondApiError(res, {400, "bad_data", "no match[] parameter provided"});
        }
        std::optional<ApiError> error;
        auto sets = parseMatchers(selectors, error);
        if (error) {
          return respondApiError(res, *error);
        }
        json data = json::array();
        std::set<LabelSet> seen;
        for (const auto& matchers : sets) {
          for (auto& labels : store.series(matchers)) {
            if (seen.insert(labels).second) {
              data.push_back(metricJson(labels));
            }
          }
        }
        respondData(res, data);
      },
      Access::kRead);

  http.route(
      "/api/v1/labels", {"GET", "POST"},
      [&store](const HttpRequest&, HttpResponse& res) { respondData(res, store.labelNames()); },
      Access::kRead);

  http.routePrefix("/api/v1/label/", {"GET"}, [&store](const HttpRequest& req, HttpResponse& res) {
    // /api/v1/label/<name>/values
    std::string rest = req.path.substr(std::string("/api/v1/label/").size());
    const std::string suffix = "/values";
    if (rest.size() <= suffix.size() ||
        rest.compare(rest.size() - suffix.size(), suffix.size(), suffix) != 0) {
      res.status = 404;
      res.body = "404 page not found\n";
      return;
    }
    const std::string name = decode(rest.substr(0, rest.size() - suffix.size()));
    if (!isValidLabelName(name)) {
      return respondApiError(res, {400, "bad_data", "invalid label name: \"" + name + "\""});
    }
    Params params(req);
    auto selectors = params.all("match[]");
    if (selectors.empty()) {
      return respondData(res, store.labelValues(name));
    }
    std::optional<ApiError> error;
    auto sets = parseMatchers(selectors, error);
    if (error) {
      return respondApiError(res, *error);
    }
    std::set<std::string> values;
    for (const auto& matchers : sets) {
      for (const auto& labels : store.series(matchers)) {
        for (const auto& l : labels) {
          if (l.name == name) {
            values.insert(l.value);
          }
        }
      }
    }
    respondData(res, std::vector<std::string>(values.begin(), values.end()));
  });

  http.route("/api/v1/status/buildinfo", {"GET"}, [options](const HttpRequest&, HttpResponse& res) {
    respondData(res, json{{"version", options.version},
                          {"revision", options.revision},
                          {"branch", ""},
                          {"buildUser", ""},
                          {"buildDate", ""},
                          {"goVersion", ""}});
  });
}

}  // namespace vigil
