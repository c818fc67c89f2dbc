#include "protobuf_format.h"

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <set>
#include <string>

#include "client_model.pb.h"

namespace vigil::collectors {
namespace {

// One family's conversion; its errors are prefixed with the family by the caller.
class FamilyReader {
 public:
  FamilyReader(TextParseResult& out, std::size_t max_samples)
      : out_(out), max_samples_(max_samples) {}

  Status read(const push::MetricFamily& f) {
    MetricType type = MetricType::kUntyped;
    switch (f.type()) {
      case push::COUNTER:
        type = MetricType::kCounter;
        break;
      case push::GAUGE:
        type = MetricType::kGauge;
        break;
      case push::SUMMARY:
        type = MetricType::kSummary;
        break;
      case push::HISTOGRAM:
      case push::GAUGE_HISTOGRAM:
        type = MetricType::kHistogram;
        break;
      case push::UNTYPED:
        break;
    }
    MetricFamily& family = out_.batch.family(f.name(), f.help(), type);
    for (const push::Metric& m : f.metric()) {
      if (m.has_timestamp_ms()) {
        ++out_.timestamped;
      }
      Status st = Status::ok();
      switch (f.type()) {
        case push::COUNTER:
          st = add(family, m, {}, {}, {}, m.counter().value());
          break;
        case push::GAUGE:
          st = add(family, m, {}, {}, {}, m.gauge().value());
          break;
        case push::UNTYPED:
          st = add(family, m, {}, {}, {}, m.untyped().value());
          break;
        case push::SUMMARY:
          st = addSummary(family, m);
          break;
        case push::HISTOGRAM:
        case push::GAUGE_HISTOGRAM:
          st = addHistogram(family, m);
          break;
      }
      if (!st.isOk()) {
        return st;
      }
    }
    return Status::ok();
  }

 private:
  Status addSummary(MetricFamily& family, const push::Metric& m) {
    const push::Summary& s = m.summary();
    for (const push::Quantile& q : s.quantile()) {
      if (Status st = add(family, m, {}, "quantile", goFloat(q.quantile()), q.value());
          !st.isOk()) {
        return st;
      }
    }
    if (Status st = add(family, m, "_sum", {}, {}, s.sample_sum()); !st.isOk()) {
      return st;
    }
    return add(family, m, "_count", {}, {}, static_cast<double>(s.sample_count()));
  }

  Status addHistogram(MetricFamily& family, const push::Metric& m) {
    const push::Histogram& h = m.histogram();
    // As Prometheus reads them: a float histogram's counts where it has them.
    const double count =
        h.sample_count_float() > 0 ? h.sample_count_float() : static_cast<double>(h.sample_count());
    bool has_inf = false;
    for (const push::Bucket& b : h.bucket()) {
      const double cumulative = b.cumulative_count_float() > 0
                                    ? b.cumulative_count_float()
                                    : static_cast<double>(b.cumulative_count());
      has_inf = has_inf || std::isinf(b.upper_bound());
      if (Status st = add(family, m, "_bucket", "le", goFloat(b.upper_bound()), cumulative);
          !st.isOk()) {
        return st;
      }
    }
    if (!has_inf) {
      if (Status st = add(family, m, "_bucket", "le", "+Inf", count); !st.isOk()) {
        return st;
      }
    }
    if (Status st = add(family, m, "_sum", {}, {}, h.sample_sum()); !st.isOk()) {
      return st;
    }
    return add(family, m, "_count", {}, {}, count);
  }

  // One sample: the metric's labels (checked), `extra` (le or quantile) when named.
  Status add(MetricFamily& family, const push::Metric& m, std::string_view suffix,
             std::string_view extra_name, std::string extra_value, double value) {
    if (++out_.samples > max_samples_) {
      return invalidArgument("more than " + std::to_string(max_samples_) + " samples");
    }
    LabelSet labels;
    labels.reserve(static_cast<std::size_t>(m.label_size()) + (extra_name.empty() ? 0 : 1));
    for (const push::LabelPair& l : m.label()) {
      if (!isValidLabelName(l.name())) {
        return invalidArgument("invalid label name \"" + l.name().substr(0, 64) + "\"");
      }
      if (l.name() == extra_name) {
        return invalidArgument("label " + l.name() + " is the " +
                               (suffix == "_bucket" ? "histogram's" : "summary's") + " own");
      }
      labels.push_back({l.name(), l.value()});
    }
    if (!extra_name.empty()) {
      labels.push_back({std::string(extra_name), std::move(extra_value)});
    }
    std::sort(labels.begin(), labels.end(),
              [](const Label& a, const Label& b) { return a.name < b.name; });
    for (std::size_t i = 1; i < labels.size(); ++i) {
      if (labels[i].name == labels[i - 1].name) {
        return invalidArgument("label " + labels[i].name + " appears twice");
      }
    }
    family.samples.push_back(MetricSample{std::move(labels), value, std::string(suffix)});
    return Status::ok();
  }

  TextParseResult& out_;
  std::size_t max_samples_;
};

}  // namespace

Result<TextParseResult> parseDelimitedMetricFamilies(std::string_view body,
                                                     std::size_t max_samples) {
  if (body.size() > static_cast<std::size_t>(INT_MAX)) {
    return invalidArgument("body too large");
  }
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(body.data()),
                                            static_cast<int>(body.size()));
  TextParseResult out;
  FamilyReader reader(out, max_samples);
  std::set<std::string, std::less<>> names;
  for (std::size_t index = 1; in.CurrentPosition() < static_cast<int>(body.size()); ++index) {
    const std::string at = "family " + std::to_string(index);
    uint32_t size = 0;
    if (!in.ReadVarint32(&size)) {
      return invalidArgument(at + ": damaged length prefix");
    }
    if (size > body.size() - static_cast<std::size_t>(in.CurrentPosition())) {
      return invalidArgument(at + ": " + std::to_string(size) + " bytes announced, " +
                             std::to_string(body.size() - in.CurrentPosition()) + " left");
    }
    const auto limit = in.PushLimit(static_cast<int>(size));
    push::MetricFamily family;
    if (!family.ParseFromCodedStream(&in) || in.BytesUntilLimit() != 0) {
      return invalidArgument(at + ": not a MetricFamily message");
    }
    in.PopLimit(limit);
    const std::string named = at + " (" + family.name().substr(0, 128) + ")";
    if (!isValidMetricName(family.name())) {
      return invalidArgument(named + ": invalid metric name");
    }
    if (!names.insert(family.name()).second) {
      return invalidArgument(named + ": a second family of that name");
    }
    if (Status st = reader.read(family); !st.isOk()) {
      return invalidArgument(named + ": " + st.message());
    }
  }
  return out;
}

}  // namespace vigil::collectors
