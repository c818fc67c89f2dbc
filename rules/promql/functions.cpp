#include "functions.h"
#include "label_ops.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <limits>
#include <map>

namespace vigil::promql {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

Vector& vectorArg(FunctionContext& ctx, std::size_t i) { return std::get<Vector>(ctx.args[i]); }
// A function has at most one range-vector argument; `i` documents which one it is.
std::vector<RangeView>& matrixArg(FunctionContext& ctx, std::size_t /*i*/) { return ctx.matrix; }
double scalarArg(FunctionContext& ctx, std::size_t i) { return std::get<Scalar>(ctx.args[i]).v; }
const std::string& stringArg(FunctionContext& ctx, std::size_t i) {
  return std::get<String>(ctx.args[i]).v;
}

// Applies `f` to every element of the first argument, dropping the metric name.
template <typename F>
Value mapVector(FunctionContext& ctx, F&& f) {
  Vector& vec = vectorArg(ctx, 0);
  for (auto& s : vec) {
    s.v = f(s.v);
    s.metric.dropName();
  }
  return std::move(vec);  // in place: the argument is not read again
}

// Applies `f` to the points of each series of the first argument; a nullopt drops the series.
template <typename F>
Value mapMatrix(FunctionContext& ctx, F&& f) {
  Vector out = ctx.pool->take(matrixArg(ctx, 0).size());
  for (auto& series : matrixArg(ctx, 0)) {
    std::optional<double> v = f(series.points);
    if (v) {
      series.metric.dropName();
      out.push_back({std::move(series.metric), ctx.t, *v});
    }
  }
  return out;
}

// rate, increase and delta: Prometheus 2.42's extrapolation to the edges of the window.
// `may_reset`: whether the points can hold a counter reset (false when the whole series read
// has none, which saves a pass over the window at every step).
std::optional<double> extrapolatedRate(std::span<const Sample> points, int64_t range_start,
                                       int64_t range_end, bool is_counter, bool is_rate,
                                       bool may_reset) {
  if (points.size() < 2) {
    return std::nullopt;
  }
  double result = points.back().v - points.front().v;
  if (is_counter && may_reset) {
    double last = points.front().v;
    for (const auto& p : points) {
      if (p.v < last) {
        result += last;  // a counter reset
      }
      last = p.v;
    }
  }
  double duration_to_start = static_cast<double>(points.front().t - range_start) / 1000;
  const double duration_to_end = static_cast<double>(range_end - points.back().t) / 1000;
  const double sampled = static_cast<double>(points.back().t - points.front().t) / 1000;
  const double average = sampled / static_cast<double>(points.size() - 1);
  if (is_counter && result > 0 && points.front().v >= 0) {
    // A counter cannot have been below zero: do not extrapolate past that point.
    const double duration_to_zero = sampled * (points.front().v / result);
    if (duration_to_zero < duration_to_start) {
      duration_to_start = duration_to_zero;
    }
  }
  const double threshold = average * 1.1;
  double interval = sampled;
  interval += duration_to_start < threshold ? duration_to_start : average / 2;
  interval += duration_to_end < threshold ? duration_to_end : average / 2;
  // One factor, as Prometheus computes it: the rounding differs from dividing twice.
  double factor = interval / sampled;
  if (is_rate) {
    factor /= static_cast<double>(range_end - range_start) / 1000;
  }
  return result * factor;
}

std::optional<double> instantDelta(std::span<const Sample> points, bool is_rate) {
  if (points.size() < 2) {
    return std::nullopt;
  }
  const Sample& last = points.back();
  const Sample& prev = points[points.size() - 2];
  double result = last.v - prev.v;
  if (is_rate && last.v < prev.v) {
    result = last.v;  // counter reset
  }
  const int64_t interval = last.t - prev.t;
  if (interval == 0) {
    return std::nullopt;
  }
  if (is_rate) {
    result /= static_cast<double>(interval) / 1000;
  }
  return result;
}

std::pair<double, double> linearRegression(std::span<const Sample> points, int64_t intercept_t) {
  double n = 0;
  double sum_x = 0;
  double sum_y = 0;
  double sum_xy = 0;
  double sum_x2 = 0;
  const double init_y = points.front().v;
  bool const_y = true;
  for (const auto& p : points) {
    const double x = static_cast<double>(p.t - intercept_t) / 1000;
    n += 1;
    sum_x += x;
    sum_y += p.v;
    sum_xy += x * p.v;
    sum_x2 += x * x;
    if (const_y && p.v != init_y) {
      const_y = false;
    }
  }
  if (const_y) {
    if (std::isinf(init_y)) {
      return {kNaN, kNaN};
    }
    return {0, init_y};
  }
  const double cov_xy = sum_xy - sum_x * sum_y / n;
  const double var_x = sum_x2 - sum_x * sum_x / n;
  const double slope = cov_xy / var_x;
  const double intercept = sum_y / n - slope * sum_x / n;
  return {slope, intercept};
}

// Kahan-Babuska compensated summation, as Prometheus uses it: returns the new sum and updates
// the compensation `c`.
double kahanSumInc(double inc, double sum, double& c) {
  const double t = sum + inc;
  if (std::fabs(sum) >= std::fabs(inc)) {
    c += (sum - t) + inc;
  } else {
    c += (inc - t) + sum;
  }
  return t;
}

double trendValue(int i, double tf, double s0, double s1, double b) {
  if (i == 0) {
    return b;
  }
  return tf * (s1 - s0) + (1 - tf) * b;
}

// The number arguments of a call, in order (predict_linear's duration, ...).
std::vector<double> windowScalars(FunctionContext& ctx) {
  std::vector<double> out;
  const auto& types = ctx.call.func->arg_types;
  for (std::size_t i = 0; i < ctx.args.size(); ++i) {
    const bool matrix =
        !types.empty() && types[std::min(i, types.size() - 1)] == ValueType::kMatrix;
    if (const auto* s = std::get_if<Scalar>(&ctx.args[i]); s != nullptr && !matrix) {
      out.push_back(s->v);
    }
  }
  return out;
}

}  // namespace

WindowFunction windowFunction(std::string_view name, const std::vector<double>& scalars) {
  using Points = std::span<const Sample>;
  if (name == "rate" || name == "increase" || name == "delta") {
    const bool counter = name != "delta";
    const bool rate = name == "rate";
    return
        [counter, rate](Points p, int64_t range_start, int64_t range_end, int64_t, bool may_reset) {
          return extrapolatedRate(p, range_start, range_end, counter, rate, may_reset);
        };
  }
  if (name == "irate" || name == "idelta") {
    const bool rate = name == "irate";
    return [rate](Points p, int64_t, int64_t, int64_t, bool) { return instantDelta(p, rate); };
  }
  if (name == "deriv") {
    return [](Points p, int64_t, int64_t, int64_t, bool) -> std::optional<double> {
      if (p.size() < 2) {
        return std::nullopt;
      }
      return linearRegression(p, p.front().t).first;
    };
  }
  if (name == "predict_linear" && scalars.size() == 1) {
    const double duration = scalars[0];
    return [duration](Points p, int64_t, int64_t, int64_t t, bool) -> std::optional<double> {
      if (p.size() < 2) {
        return std::nullopt;
      }
      auto [slope, intercept] = linearRegression(p, t);
      return slope * duration + intercept;
    };
  }
  if (name == "changes" || name == "resets") {
    const bool changes = name == "changes";
    return [changes](Points p, int64_t, int64_t, int64_t, bool) -> std::optional<double> {
      double n = 0;
      for (std::size_t i = 1; i < p.size(); ++i) {
        const double prev = p[i - 1].v;
        const double cur = p[i].v;
        if (changes ? (cur != prev && !(std::isnan(cur) && std::isnan(prev))) : cur < prev) {
          n += 1;
        }
      }
      return n;
    };
  }
  if (name == "present_over_time") {
    return [](Points, int64_t, int64_t, int64_t, bool) -> std::optional<double> { return 1.0; };
  }
  if (name == "count_over_time") {
    return [](Points p, int64_t, int64_t, int64_t, bool) -> std::optional<double> {
      return static_cast<double>(p.size());
    };
  }
  if (name == "sum_over_time") {
    return [](Points p, int64_t, int64_t, int64_t, bool) -> std::optional<double> {
      double sum = 0;
      double c = 0;
      for (const auto& x : p) {
        sum = kahanSumInc(x.v, sum, c);
      }
      return std::isinf(sum) ? sum : sum + c;
    };
  }
  if (name == "avg_over_time") {
    return [](Points p, int64_t, int64_t, int64_t, bool) -> std::optional<double> {
      double mean = 0;
      double count = 0;
      double c = 0;
      for (const auto& x : p) {
        count += 1;
        if (std::isinf(mean)) {
          if (std::isinf(x.v) && (mean > 0) == (x.v > 0)) {
            continue;
          }
          if (!std::isinf(x.v) && !std::isnan(x.v)) {
            continue;
          }
        }
        mean = kahanSumInc(x.v / count - mean / count, mean, c);
      }
      return std::isinf(mean) ? mean : mean + c;
    };
  }
  if (name == "max_over_time" || name == "min_over_time") {
    const bool max = name == "max_over_time";
    return [max](Points p, int64_t, int64_t, int64_t, bool) -> std::optional<double> {
      double v = p.front().v;
      for (const auto& x : p) {
        if ((max ? x.v > v : x.v < v) || std::isnan(v)) {
          v = x.v;
        }
      }
      return v;
    };
  }
  if (name == "stddev_over_time" || name == "stdvar_over_time") {
    const bool stddev = name == "stddev_over_time";
    return [stddev](Points p, int64_t, int64_t, int64_t, bool) -> std::optional<double> {
      double count = 0;
      double mean = 0;
      double c_mean = 0;
      double aux = 0;
      double c_aux = 0;
      for (const auto& x : p) {
        count += 1;
        const double delta = x.v - (mean + c_mean);
        mean = kahanSumInc(delta / count, mean, c_mean);
        aux = kahanSumInc(delta * (x.v - (mean + c_mean)), aux, c_aux);
      }
      const double var = (aux + c_aux) / count;
      return stddev ? std::sqrt(var) : var;
    };
  }
  return nullptr;
}

namespace {

template <typename F>
Value timePart(FunctionContext& ctx, F&& part) {
  Vector input;
  if (ctx.args.empty()) {
    input.push_back({{}, ctx.t, static_cast<double>(ctx.t) / 1000});
  } else {
    input = std::move(vectorArg(ctx, 0));
  }
  Vector out;
  for (auto& s : input) {
    const std::time_t secs = static_cast<std::time_t>(std::floor(s.v));
    std::tm tm{};
    gmtime_r(&secs, &tm);
    s.v = part(tm);
    s.metric.dropName();
    out.push_back(std::move(s));
  }
  return out;
}

int daysInMonth(int year, int month0) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month0 == 1 && leap ? 29 : kDays[month0];
}

struct Bucket {
  double upper;
  double count;
};

double bucketQuantile(double q, std::vector<Bucket> buckets) {
  if (std::isnan(q)) {
    return kNaN;
  }
  if (q < 0) {
    return -kInf;
  }
  if (q > 1) {
    return kInf;
  }
  std::sort(buckets.begin(), buckets.end(),
            [](const Bucket& a, const Bucket& b) { return a.upper < b.upper; });
  if (buckets.empty() || !std::isinf(buckets.back().upper) || buckets.back().upper < 0) {
    return kNaN;
  }
  // Buckets with the same bound are merged; counts made monotonic.
  std::vector<Bucket> merged;
  for (const auto& b : buckets) {
    if (!merged.empty() && merged.back().upper == b.upper) {
      merged.back().count += b.count;
    } else {
      merged.push_back(b);
    }
  }
  double max = -kInf;
  for (auto& b : merged) {
    if (b.count > max) {
      max = b.count;
    } else if (b.count < max) {
      b.count = max;
    }
  }
  if (merged.size() < 2) {
    return kNaN;
  }
  const double observations = merged.back().count;
  if (observations == 0) {
    return kNaN;
  }
  double rank = q * observations;
  std::size_t b = 0;
  while (b < merged.size() - 1 && merged[b].count < rank) {
    ++b;
  }
  if (b == merged.size() - 1) {
    return merged[merged.size() - 2].upper;
  }
  if (b == 0 && merged[0].upper <= 0) {
    return merged[0].upper;
  }
  double start = 0;
  const double end = merged[b].upper;
  double count = merged[b].count;
  if (b > 0) {
    start = merged[b - 1].upper;
    count -= merged[b - 1].count;
    rank -= merged[b - 1].count;
  }
  return start + (end - start) * (rank / count);
}

// Go regexp's Expand: $1, ${1}, $name, ${name}; $$ is a literal $.
std::string expandTemplate(const std::string& tmpl, const RE2& re,
                           const std::vector<re2::StringPiece>& groups) {
  std::string out;
  const auto& names = re.NamedCapturingGroups();
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '$' || i + 1 >= tmpl.size()) {
      out += tmpl[i];
      continue;
    }
    if (tmpl[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    std::string name;
    std::size_t j = i + 1;
    if (tmpl[j] == '{') {
      const auto close = tmpl.find('}', j);
      if (close == std::string::npos) {
        out += tmpl[i];
        continue;
      }
      name = tmpl.substr(j + 1, close - j - 1);
      j = close + 1;
    } else {
      while (j < tmpl.size() &&
             (std::isalnum(static_cast<unsigned char>(tmpl[j])) || tmpl[j] == '_')) {
        name += tmpl[j++];
      }
    }
    if (name.empty()) {
      out += tmpl[i];
      continue;
    }
    int index = -1;
    if (std::all_of(name.begin(), name.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      index = std::stoi(name);
    } else if (auto it = names.find(name); it != names.end()) {
      index = it->second;
    }
    if (index >= 0 && static_cast<std::size_t>(index) < groups.size() && groups[index].data()) {
      out.append(groups[index].data(), groups[index].size());
    }
    i = j - 1;
  }
  return out;
}

}  // namespace

double quantile(double q, std::vector<double> values) {
  if (values.empty() || std::isnan(q)) {
    return kNaN;
  }
  if (q < 0) {
    return -kInf;
  }
  if (q > 1) {
    return kInf;
  }
  std::sort(values.begin(), values.end());
  const double n = static_cast<double>(values.size());
  const double rank = q * (n - 1);
  const auto lower = static_cast<std::size_t>(std::max(0.0, std::floor(rank)));
  const auto upper = std::min(values.size() - 1, lower + 1);
  const double weight = rank - std::floor(rank);
  return values[lower] * (1 - weight) + values[upper] * weight;
}

LabelSet absentLabels(const Expr& arg) {
  const Expr* e = &arg;
  while (e->kind == ExprKind::kParen) {
    e = static_cast<const ParenExpr*>(e)->expr.get();
  }
  const VectorSelector* vs = nullptr;
  if (e->kind == ExprKind::kVectorSelector) {
    vs = static_cast<const VectorSelector*>(e);
  } else if (e->kind == ExprKind::kMatrixSelector) {
    vs = static_cast<const VectorSelector*>(static_cast<const MatrixSelector*>(e)->selector.get());
  }
  LabelSet out;
  if (vs == nullptr) {
    return out;
  }
  std::map<std::string, int> seen;
  for (const auto& m : vs->matchers) {
    if (m.type() == MatchType::kEqual && m.name() != kMetricNameLabel) {
      // A label matched twice with = is ambiguous: Prometheus leaves it out.
      if (++seen[m.name()] == 1) {
        out.push_back({m.name(), m.value()});
      } else {
        out.erase(std::remove_if(out.begin(), out.end(),
                                 [&](const Label& l) { return l.name == m.name(); }),
                  out.end());
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const Label& a, const Label& b) { return a.name < b.name; });
  return out;
}

Result<Value> callFunction(FunctionContext& ctx) {
  const std::string& name = ctx.call.func->name;
  const int64_t t = ctx.t;
  using Points = std::span<const Sample>;

  // Math on instant vectors.
  static const std::map<std::string, double (*)(double)> kMath = {
      {"abs", [](double v) { return std::fabs(v); }},
      {"ceil", [](double v) { return std::ceil(v); }},
      {"floor", [](double v) { return std::floor(v); }},
      {"exp", [](double v) { return std::exp(v); }},
      {"ln", [](double v) { return std::log(v); }},
      // As Go computes it (frexp, then the natural log of the fraction), to the last bit.
      {"log2",
       [](double v) {
         int exp = 0;
         const double frac = std::frexp(v, &exp);
         if (frac == 0.5) {
           return static_cast<double>(exp - 1);
         }
         return std::log(frac) * (1 / M_LN2) + static_cast<double>(exp);
       }},
      {"log10", [](double v) { return std::log10(v); }},
      {"sqrt", [](double v) { return std::sqrt(v); }},
      {"sgn", [](double v) { return v < 0   ? -1.0
                                    : v > 0 ? 1.0
                                            : v; }},
      {"acos", [](double v) { return std::acos(v); }},
      {"acosh", [](double v) { return std::acosh(v); }},
      {"asin", [](double v) { return std::asin(v); }},
      {"asinh", [](double v) { return std::asinh(v); }},
      {"atan", [](double v) { return std::atan(v); }},
      {"atanh", [](double v) { return std::atanh(v); }},
      {"cos", [](double v) { return std::cos(v); }},
      {"cosh", [](double v) { return std::cosh(v); }},
      {"sin", [](double v) { return std::sin(v); }},
      {"sinh", [](double v) { return std::sinh(v); }},
      {"tan", [](double v) { return std::tan(v); }},
      {"tanh", [](double v) { return std::tanh(v); }},
      {"deg", [](double v) { return v * 180 / M_PI; }},
      {"rad", [](double v) { return v * M_PI / 180; }},
  };
  if (auto it = kMath.find(name); it != kMath.end()) {
    return mapVector(ctx, it->second);
  }
  if (name == "round") {
    const double to_nearest = ctx.args.size() > 1 ? scalarArg(ctx, 1) : 1;
    const double inverse = 1.0 / to_nearest;
    return mapVector(ctx, [&](double v) { return std::floor(v * inverse + 0.5) / inverse; });
  }
  if (name == "clamp" || name == "clamp_min" || name == "clamp_max") {
    double lo = -kInf;
    double hi = kInf;
    if (name == "clamp") {
      lo = scalarArg(ctx, 1);
      hi = scalarArg(ctx, 2);
      if (hi < lo) {
        return Value(Vector{});
      }
    } else if (name == "clamp_min") {
      lo = scalarArg(ctx, 1);
    } else {
      hi = scalarArg(ctx, 1);
    }
    return mapVector(ctx, [&](double v) { return std::max(lo, std::min(hi, v)); });
  }
  if (name == "time") {
    return Value(Scalar{t, static_cast<double>(t) / 1000});
  }
  if (name == "pi") {
    return Value(Scalar{t, M_PI});
  }
  if (name == "vector") {
    return Value(Vector{{{}, t, scalarArg(ctx, 0)}});
  }
  if (name == "scalar") {
    auto& vec = vectorArg(ctx, 0);
    return Value(Scalar{t, vec.size() == 1 ? vec[0].v : kNaN});
  }
  if (name == "timestamp") {
    // Of an expression other than a plain selector: the evaluation time (the engine handles
    // selectors itself).
    return mapVector(ctx, [&](double) { return static_cast<double>(t) / 1000; });
  }
  if (name == "sort" || name == "sort_desc") {
    auto vec = std::move(vectorArg(ctx, 0));
    const bool desc = name == "sort_desc";
    std::stable_sort(vec.begin(), vec.end(),
                     [desc](const InstantSample& a, const InstantSample& b) {
                       if (std::isnan(a.v)) {
                         return !std::isnan(b.v) ? desc : false;
                       }
                       if (std::isnan(b.v)) {
                         return !desc;
                       }
                       return desc ? a.v > b.v : a.v < b.v;
                     });
    return Value(std::move(vec));
  }
  if (name == "absent") {
    if (!vectorArg(ctx, 0).empty()) {
      return Value(Vector{});
    }
    return Value(Vector{{ctx.absent_labels, t, 1}});
  }
  if (name == "absent_over_time") {
    if (!matrixArg(ctx, 0).empty()) {
      return Value(Vector{});
    }
    return Value(Vector{{ctx.absent_labels, t, 1}});
  }
  if (name == "label_replace") {
    const std::string& dst = stringArg(ctx, 1);
    const std::string& replacement = stringArg(ctx, 2);
    const std::string& src = stringArg(ctx, 3);
    const std::string& pattern = stringArg(ctx, 4);
    RE2 re("^(?:" + pattern + ")$");
    if (!re.ok()) {
      return invalidArgument("invalid regular expression in label_replace(): " + pattern);
    }
    if (!isValidLabelName(dst)) {
      return invalidArgument("invalid destination label name in label_replace(): " + dst);
    }
    Vector out;
    for (auto& s : vectorArg(ctx, 0)) {
      const std::string value = labelValue(s.metric, src);
      std::vector<re2::StringPiece> groups(
          static_cast<std::size_t>(re.NumberOfCapturingGroups() + 1));
      if (re.Match(value, 0, value.size(), RE2::ANCHOR_BOTH, groups.data(),
                   static_cast<int>(groups.size()))) {
        setLabel(s.metric.mut(), dst, expandTemplate(replacement, re, groups));
      }
      out.push_back(std::move(s));
    }
    return Value(std::move(out));
  }
  if (name == "label_join") {
    const std::string& dst = stringArg(ctx, 1);
    const std::string& sep = stringArg(ctx, 2);
    if (!isValidLabelName(dst)) {
      return invalidArgument("invalid destination label name in label_join(): " + dst);
    }
    Vector out;
    for (auto& s : vectorArg(ctx, 0)) {
      std::string joined;
      for (std::size_t i = 3; i < ctx.args.size(); ++i) {
        if (i > 3) {
          joined += sep;
        }
        joined += labelValue(s.metric, stringArg(ctx, i));
      }
      setLabel(s.metric.mut(), dst, joined);
      out.push_back(std::move(s));
    }
    return Value(std::move(out));
  }
  if (name == "histogram_quantile") {
    const double q = scalarArg(ctx, 0);
    std::map<std::string, std::pair<LabelSet, std::vector<Bucket>>> groups;
    for (auto& s : vectorArg(ctx, 1)) {
      const std::string le = labelValue(s.metric, "le");
      char* end = nullptr;
      double upper = std::strtod(le.c_str(), &end);
      if (le == "+Inf" || le == "Inf" || le == "inf" || le == "+inf") {
        upper = kInf;
      } else if (le.empty() || end != le.c_str() + le.size()) {
        continue;  // not a bucket
      }
      LabelSet metric = s.metric;
      eraseLabel(metric, kMetricNameLabel);
      setLabel(metric, "le", "");
      std::string key;
      for (const auto& l : metric) {
        key += l.name + '\xff' + l.value + '\xff';
      }
      auto& g = groups[key];
      g.first = metric;
      g.second.push_back({upper, s.v});
    }
    Vector out;
    for (auto& [key, g] : groups) {
      out.push_back({g.first, t, bucketQuantile(q, g.second)});
    }
    return Value(std::move(out));
  }
  static const std::map<std::string, int> kTimeParts = {
      {"day_of_month", 0}, {"day_of_week", 1}, {"day_of_year", 2}, {"days_in_month", 3},
      {"hour", 4},         {"minute", 5},      {"month", 6},       {"year", 7}};
  if (auto it = kTimeParts.find(name); it != kTimeParts.end()) {
    const int part = it->second;
    return timePart(ctx, [part](const std::tm& tm) -> double {
      switch (part) {
        case 0:
          return tm.tm_mday;
        case 1:
          return tm.tm_wday;
        case 2:
          return tm.tm_yday + 1;
        case 3:
          return daysInMonth(tm.tm_year + 1900, tm.tm_mon);
        case 4:
          return tm.tm_hour;
        case 5:
          return tm.tm_min;
        case 6:
          return tm.tm_mon + 1;
        default:
          return tm.tm_year + 1900;
      }
    });
  }

  // Functions of range vectors.
  if (WindowFunction f = windowFunction(name, windowScalars(ctx))) {
    Vector out = ctx.pool->take(matrixArg(ctx, 0).size());
    for (auto& series : matrixArg(ctx, 0)) {
      const SelectedSeries* from = series.metric.borrowedFrom();
      const std::optional<double> v =
          f(series.points, ctx.range_start, ctx.range_end, t, from == nullptr || from->has_resets);
      if (v) {
        series.metric.dropName();
        out.push_back({std::move(series.metric), t, *v});
      }
    }
    return Value(std::move(out));
  }
  if (name == "holt_winters") {
    const double sf = scalarArg(ctx, 1);
    const double tf = scalarArg(ctx, 2);
    if (sf <= 0 || sf >= 1) {
      return invalidArgument("invalid smoothing factor. Expected: 0 < sf < 1, got: " +
                             std::to_string(sf));
    }
    if (tf <= 0 || tf >= 1) {
      return invalidArgument("invalid trend factor. Expected: 0 < tf < 1, got: " +
                             std::to_string(tf));
    }
    return mapMatrix(ctx, [&](const Points& p) -> std::optional<double> {
      if (p.size() < 2) {
        return std::nullopt;
      }
      double s0 = 0;
      double s1 = p[0].v;
      double b = p[1].v - p[0].v;
      for (std::size_t i = 1; i < p.size(); ++i) {
        const double x = sf * p[i].v;
        b = trendValue(static_cast<int>(i) - 1, tf, s0, s1, b);
        const double y = (1 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
      }
      return s1;
    });
  }
  if (name == "quantile_over_time") {
    const double q = scalarArg(ctx, 0);
    Vector out;
    for (auto& series : matrixArg(ctx, 1)) {
      std::vector<double> values;
      for (const auto& p : series.points) {
        values.push_back(p.v);
      }
      series.metric.dropName();
      out.push_back({std::move(series.metric), t, quantile(q, values)});
    }
    return Value(std::move(out));
  }
  if (name == "last_over_time") {
    // last_over_time keeps the metric name.
    Vector out;
    for (auto& series : matrixArg(ctx, 0)) {
      out.push_back({std::move(series.metric), t, series.points.back().v});
    }
    return Value(std::move(out));
  }
  // The parser only accepts functions of its table, and each has a branch above.
  return internalError("no evaluation for function " + name);
}

}  // namespace vigil::promql
