#include "statsd.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace vigil::collectors {

namespace {

// Prometheus's default histogram buckets, in seconds.
constexpr double kBuckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

std::string sanitize(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == ':')) {
      c = '_';
    }
  }
  if (!out.empty() && out[0] >= '0' && out[0] <= '9') {
    out.insert(out.begin(), '_');
  }
  return out;
}

bool parseNumber(std::string_view s, double& out) {
  if (s.empty()) {
    return false;
  }
  if (s.front() == '+') {
    s.remove_prefix(1);
  }
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(out);
}

}  // namespace

void StatsdAggregator::ingestPacket(std::string_view packet) {
  std::lock_guard lock(mu_);
  ++stats_.packets;
  while (!packet.empty()) {
    const std::size_t eol = std::min(packet.find('\n'), packet.size());
    std::string_view line = packet.substr(0, eol);
    packet.remove_prefix(std::min(eol + 1, packet.size()));
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      continue;
    }
    if (ingestLine(line)) {
      ++stats_.lines_ok;
    }
  }
}

void StatsdAggregator::rejectPacket() {
  std::lock_guard lock(mu_);
  ++stats_.packets;
  ++stats_.lines_bad;
}

bool StatsdAggregator::ingestLine(std::string_view line) {
  const std::size_t colon = line.find(':');
  const std::size_t bar = line.find('|');
  if (colon == std::string_view::npos || bar == std::string_view::npos || bar < colon ||
      colon == 0) {
    ++stats_.lines_bad;
    return false;
  }
  const std::string name = sanitize(line.substr(0, colon));
  const std::string_view value_text = line.substr(colon + 1, bar - colon - 1);
  std::string_view rest = line.substr(bar + 1);
  const std::string_view type = rest.substr(0, rest.find('|'));
  double rate = 1;
  LabelSet labels;
  std::size_t pos = rest.find('|');
  while (pos != std::string_view::npos) {
    rest.remove_prefix(pos + 1);
    pos = rest.find('|');
    const std::string_view field = rest.substr(0, pos);
    if (field.starts_with("@")) {
      if (!parseNumber(field.substr(1), rate) || rate <= 0 || rate > 1) {
        ++stats_.lines_bad;
        return false;
      }
    } else if (field.starts_with("#")) {
      std::string_view tags = field.substr(1);
      while (!tags.empty()) {
        const std::size_t comma = std::min(tags.find(','), tags.size());
        const std::string_view tag = tags.substr(0, comma);
        tags.remove_prefix(std::min(comma + 1, tags.size()));
        const std::size_t sep = tag.find(':');
        const std::string key = sanitize(tag.substr(0, sep));
        if (key.empty() || key.starts_with("__")) {
          continue;
        }
        const std::string value =
            sep == std::string_view::npos ? std::string() : std::string(tag.substr(sep + 1));
        std::erase_if(labels, [&](const Label& l) { return l.name == key; });
        labels.push_back({key, value});
      }
    }
  }
  std::sort(labels.begin(), labels.end());
  double value = 0;
  if (!parseNumber(value_text, value)) {
    ++stats_.lines_bad;
    return false;
  }
  MetricType kind;
  if (type == "c") {
    kind = MetricType::kCounter;
  } else if (type == "g") {
    kind = MetricType::kGauge;
  } else if (type == "ms" || type == "h" || type == "d") {
    kind = MetricType::kHistogram;
  } else {
    ++stats_.lines_bad;  // sets and unknown types
    return false;
  }
  if (kind == MetricType::kCounter && value < 0) {
    ++stats_.lines_bad;  // counters only go up
    return false;
  }
  auto& by_labels = series_[name];
  // One name, one type, whatever the tags: a family cannot be both a counter and a histogram
  // (found by the StatsD fuzzer: the snapshot read a counter's missing buckets).
  if (!by_labels.empty() && by_labels.begin()->second.type != kind) {
    ++stats_.lines_bad;
    return false;
  }
  auto it = by_labels.find(labels);
  if (it == by_labels.end()) {
    if (series_count_ >= kMaxSeries) {
      ++stats_.lines_dropped;
      return false;
    }
    Series s;
    s.type = kind;
    if (kind == MetricType::kHistogram) {
      s.buckets.assign(std::size(kBuckets), 0);
    }
    it = by_labels.emplace(std::move(labels), std::move(s)).first;
    ++series_count_;
  }
  Series& s = it->second;
  if (s.type != kind) {
    ++stats_.lines_bad;  // the same name sent with another type
    return false;
  }
  switch (kind) {
    case MetricType::kCounter:
      s.value += value / rate;
      break;
    case MetricType::kGauge:
      // "+N" and "-N" move the gauge; a plain number sets it.
      if (value_text.front() == '+' || value_text.front() == '-') {
        s.value += value;
      } else {
        s.value = value;
      }
      break;
    default: {
      const double observed = type == "ms" ? value / 1000.0 : value;
      const auto times = static_cast<uint64_t>(std::llround(1 / rate));
      for (std::size_t b = 0; b < std::size(kBuckets); ++b) {
        if (observed <= kBuckets[b]) {
          s.buckets[b] += times;
          break;
        }
      }
      s.sum += observed * static_cast<double>(times);
      s.count += times;
      break;
    }
  }
  return true;
}

void StatsdAggregator::snapshot(MetricBatch& out) const {
  std::lock_guard lock(mu_);
  for (const auto& [name, by_labels] : series_) {
    if (by_labels.empty()) {
      continue;
    }
    const MetricType type = by_labels.begin()->second.type;
    MetricFamily& f = out.family(name, "Metric received over StatsD.", type);
    for (const auto& [labels, s] : by_labels) {
      if (type != MetricType::kHistogram) {
        f.samples.push_back({labels, s.value, ""});
        continue;
      }
      uint64_t cumulative = 0;
      for (std::size_t b = 0; b < std::size(kBuckets); ++b) {
        cumulative += s.buckets[b];
        LabelSet l = labels;
        l.push_back({"le", formatPlainFloat(kBuckets[b])});
        std::sort(l.begin(), l.end());
        f.samples.push_back({std::move(l), static_cast<double>(cumulative), "_bucket"});
      }
      LabelSet inf = labels;
      inf.push_back({"le", "+Inf"});
      std::sort(inf.begin(), inf.end());
      f.samples.push_back({std::move(inf), static_cast<double>(s.count), "_bucket"});
      f.samples.push_back({labels, s.sum, "_sum"});
      f.samples.push_back({labels, static_cast<double>(s.count), "_count"});
    }
  }
  out.addSingle("vigil_statsd_packets_total", "StatsD datagrams received.", MetricType::kCounter,
                static_cast<double>(stats_.packets));
  auto& lines = out.family("vigil_statsd_lines_total",
                           "StatsD lines by outcome: ok, bad (malformed, unknown type, a name "
                           "sent with two types), dropped (over the series limit).",
                           MetricType::kCounter);
  MetricBatch::add(lines, {{"result", "ok"}}, static_cast<double>(stats_.lines_ok));
  MetricBatch::add(lines, {{"result", "bad"}}, static_cast<double>(stats_.lines_bad));
  MetricBatch::add(lines, {{"result", "dropped"}}, static_cast<double>(stats_.lines_dropped));
}

StatsdAggregator::Stats StatsdAggregator::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace vigil::collectors
