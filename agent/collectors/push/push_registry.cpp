#include "push_registry.h"

#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

#include "../../http/http_server.h"
#include "protobuf_format.h"
#include "vigil/store.h"
#include "vigil/text_parser.h"

namespace vigil::collectors {

PushRegistry& PushRegistry::instance() {
  static PushRegistry registry;
  return registry;
}

namespace {

constexpr std::string_view kBase64Suffix = "@base64";
// The families kept for every group, as the Pushgateway keeps them.
const std::string kPushTimeFamily = "push_time_seconds";
const std::string kFailureTimeFamily = "push_failure_time_seconds";
constexpr std::string_view kInstanceLabel = "instance";

// A grouping key's value as the Pushgateway reads one whose name ends in @base64: base64url
// (RFC 4648's URL and filename safe alphabet), padding optional, "=" alone for the empty value.
// The only way a client can send a value with a slash or an empty one; Prometheus's client
// libraries do so on their own.
Result<std::string> decodeBase64Url(std::string_view encoded) {
  while (!encoded.empty() && encoded.back() == '=') {
    encoded.remove_suffix(1);
  }
  if (encoded.size() % 4 == 1) {
    return invalidArgument("a base64 text of " + std::to_string(encoded.size()) +
                           " characters (without padding) cannot be whole");
  }
  // OpenSSL decodes the standard alphabet in blocks of four: translated and padded first.
  std::string standard;
  standard.reserve(encoded.size() + 3);
  for (char c : encoded) {
    const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!plain && c != '-' && c != '_') {
      return invalidArgument(std::string("'") + c + "' is not in the base64url alphabet");
    }
    standard += c == '-' ? '+' : (c == '_' ? '/' : c);
  }
  const std::size_t padding = (4 - standard.size() % 4) % 4;
  standard.append(padding, '=');
  std::string decoded(standard.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(standard.data()),
                                static_cast<int>(standard.size()));
  if (n < 0) {
    return invalidArgument("not base64");
  }
  // EVP_DecodeBlock counts the padding's zero bytes too.
  decoded.resize(static_cast<std::size_t>(n) - padding);
  return decoded;
}

// A pushed series' labels as kept: the grouping key's win over the pushed ones, and one
// without an instance gets an empty one (see push()). Sorted by name.
LabelSet seriesLabels(const LabelSet& group, LabelSet pushed) {
  for (const auto& k : group) {
    std::erase_if(pushed, [&](const Label& l) { return l.name == k.name; });
    pushed.push_back(k);
  }
  if (std::none_of(pushed.begin(), pushed.end(),
                   [](const Label& l) { return l.name == kInstanceLabel; })) {
    pushed.push_back({std::string(kInstanceLabel), ""});
  }
  std::sort(pushed.begin(), pushed.end());
  return pushed;
}

// A histogram's series without a +Inf bucket get one, their count: the Pushgateway (Go's
// parser and encoder) serves one, and Prometheus needs it for histogram_quantile().
void addInfBuckets(MetricFamily& family) {
  auto withoutLe = [](const LabelSet& labels) {
    LabelSet out;
    for (const Label& l : labels) {
      if (l.name != "le") {
        out.push_back(l);
      }
    }
    return out;
  };
  std::map<LabelSet, std::size_t> last_bucket;  // of each series, by position
  std::set<LabelSet> with_inf;
  std::map<LabelSet, double> counts;
  for (std::size_t i = 0; i < family.samples.size(); ++i) {
    const MetricSample& s = family.samples[i];
    if (s.suffix == "_bucket") {
      LabelSet series = withoutLe(s.labels);
      auto le = std::find_if(s.labels.begin(), s.labels.end(),
                             [](const Label& l) { return l.name == "le"; });
      if (le != s.labels.end() && le->value == "+Inf") {
        with_inf.insert(series);
      }
      last_bucket[std::move(series)] = i;
    } else if (s.suffix == "_count") {
      counts[s.labels] = s.value;
    }
  }
  // From the last series backwards, so that the positions before it stay where they were.
  std::vector<std::pair<std::size_t, MetricSample>> added;
  for (const auto& [series, count] : counts) {
    if (with_inf.count(series) != 0) {
      continue;
    }
    LabelSet labels = series;
    labels.push_back({"le", "+Inf"});
    std::sort(labels.begin(), labels.end());
    auto at = last_bucket.find(series);
    const std::size_t after = at == last_bucket.end() ? family.samples.size() - 1 : at->second;
    added.push_back({after + 1, MetricSample{std::move(labels), count, "_bucket"}});
  }
  std::sort(added.begin(), added.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  for (auto& [at, sample] : added) {
    family.samples.insert(family.samples.begin() + static_cast<std::ptrdiff_t>(at),
                          std::move(sample));
  }
}

// A series of `family` that comes twice (its text), if one does.
std::optional<std::string> repeatedSeries(const MetricFamily& family) {
  std::vector<const MetricSample*> samples;
  samples.reserve(family.samples.size());
  for (const auto& sample : family.samples) {
    samples.push_back(&sample);
  }
  auto key = [](const MetricSample* s) { return std::tie(s->suffix, s->labels); };
  std::sort(samples.begin(), samples.end(),
            [&](const MetricSample* a, const MetricSample* b) { return key(a) < key(b); });
  for (std::size_t i = 1; i < samples.size(); ++i) {
    if (key(samples[i - 1]) == key(samples[i])) {
      return family.name + samples[i]->suffix + labelsToString(samples[i]->labels);
    }
  }
  return std::nullopt;
}

}  // namespace

Result<LabelSet> PushRegistry::groupingKey(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    const std::size_t slash = std::min(path.find('/', pos), path.size());
    parts.push_back(percentDecode(path.substr(pos, slash - pos)));
    pos = slash + 1;
  }
  const char* const kExpected = "expected /metrics/job/JOB[/LABEL/VALUE...]";
  if (parts.size() < 2) {
    return invalidArgument(kExpected);
  }
  if (parts.size() % 2 != 0) {
    return invalidArgument("the grouping key has a label without a value: " + parts.back());
  }
  LabelSet key;
  for (std::size_t i = 0; i < parts.size(); i += 2) {
    std::string name = parts[i];
    std::string value = parts[i + 1];
    if (name.ends_with(kBase64Suffix)) {
      name.resize(name.size() - kBase64Suffix.size());
      auto decoded = decodeBase64Url(value);
      if (!decoded) {
        return invalidArgument("the grouping key's value of " + name + " (\"" +
                               value.substr(0, 64) +
                               "\") is not base64url: " + decoded.status().message());
      }
      value = std::move(*decoded);
    }
    if (i == 0 && name != "job") {
      return invalidArgument(kExpected);
    }
    if (!isValidLabelName(name) || name.starts_with("__")) {
      return invalidArgument("invalid label name in the grouping key: " + name);
    }
    if (std::any_of(key.begin(), key.end(), [&](const Label& l) { return l.name == name; })) {
      return invalidArgument("label " + name + " appears twice in the grouping key");
    }
    if (name == "job" && value.empty()) {
      return invalidArgument("the job name is empty");
    }
    key.push_back({std::move(name), std::move(value)});
  }
  std::sort(key.begin(), key.end());
  return key;
}

Status PushRegistry::push(const LabelSet& group, std::string_view body,
                          std::string_view content_type, bool replace_all, int64_t now_ms,
                          const ExportedFamilies& exported) {
  TextParseLimits limits;
  limits.max_samples = kMaxSamplesPerGroup;
  auto parsed = content_type.find(kProtobufMediaType) != std::string_view::npos
                    ? parseDelimitedMetricFamilies(body, kMaxSamplesPerGroup)
                    : parseTextFormat(body, limits);
  if (!parsed) {
    return parsed.status();
  }
  if (!parsed->metadata_error.empty()) {
    return invalidArgument(parsed->metadata_error);
  }
  // Asked before taking the lock: what answers may take locks of its own.
  std::vector<std::optional<ExportedFamily>> own(parsed->batch.families().size());
  if (exported) {
    for (std::size_t i = 0; i < own.size(); ++i) {
      own[i] = exported(parsed->batch.families()[i].name);
    }
  }
  // The body's families as they will be kept: the grouping key's labels win over the pushed
  // ones, and a series without an instance gets an empty one, as the Pushgateway gives it (a
  // Prometheus scraping with honor_labels then leaves the series without the instance of the
  // target it scraped). Pushed push_time_seconds and push_failure_time_seconds would be the
  // very series kept for the group: like the Pushgateway, vigil keeps its own and drops those.
  std::vector<MetricFamily> families;
  families.reserve(parsed->batch.families().size());
  for (const auto& f : parsed->batch.families()) {
    if (f.name == kPushTimeFamily || f.name == kFailureTimeFamily) {
      continue;
    }
    MetricFamily& family = families.emplace_back(f);
    for (auto& sample : family.samples) {
      sample.labels = seriesLabels(group, std::move(sample.labels));
    }
    if (family.type == MetricType::kHistogram) {
      addInfBuckets(family);
    }
  }
  // What makes a body that parses one the Pushgateway refuses as invalid.
  std::string invalid;
  if (parsed->timestamped > 0) {
    invalid = "pushed metrics must not carry timestamps";
  }
  for (const MetricFamily& f : families) {
    if (!invalid.empty()) {
      break;
    }
    for (const auto& sample : f.samples) {
      auto reserved = std::find_if(sample.labels.begin(), sample.labels.end(),
                                   [](const Label& l) { return l.name.starts_with("__"); });
      if (reserved != sample.labels.end()) {
        invalid = "label " + reserved->name + " of " + f.name +
                  " is reserved (names starting with __ are Prometheus's)";
        break;
      }
    }
    if (auto twice = repeatedSeries(f); twice && invalid.empty()) {
      invalid = "the series " + *twice +
                " is pushed twice (counting the grouping key's labels, which replace pushed ones)";
    }
  }

  std::lock_guard lock(mu_);
  const bool room = groups_.find(group) != groups_.end() || groups_.size() < kMaxGroups;
  // A body that parses but cannot be kept as it is (timestamps, a series twice, a reserved
  // label name, a family of another type than another group or vigil itself gives it:
  // /metrics serves a family under one) is refused as the Pushgateway refuses one invalid or
  // inconsistent with what it has, and like it the group records the failure
  // (push_failure_time_seconds), made for it if new; a body that does not parse is refused before
  // that, and leaves no trace.
  auto refuse = [&](const std::string& why) {
    if (room) {
      groups_[group].failed_at = now_ms;
    }
    return invalidArgument(why);
  };
  auto refuseType = [&](const MetricFamily& f, MetricType other, const std::string& where) {
    return refuse("family " + f.name + " is a " + std::string(metricTypeName(f.type)) +
                  " here but a " + std::string(metricTypeName(other)) + " " + where);
  };
  if (!invalid.empty()) {
    return refuse(invalid);
  }
  for (std::size_t i = 0; i < own.size(); ++i) {
    const MetricFamily& f = parsed->batch.families()[i];
    if (f.name == kPushTimeFamily || f.name == kFailureTimeFamily) {
      continue;  // dropped below
    }
    if (own[i] && own[i]->type != f.type) {
      return refuseType(f, own[i]->type, "exported by " + own[i]->exporter);
    }
    for (const auto& [other_key, other] : groups_) {
      auto same = other.families.find(f.name);
      if (other_key != group && same != other.families.end() && same->second.type != f.type) {
        return refuseType(f, same->second.type, "in the group " + labelsToString(other_key));
      }
    }
  }
  if (!room) {
    return Status(StatusCode::kResourceExhausted,
                  "too many groups (" + std::to_string(kMaxGroups) + "); delete some first");
  }
  Group& g = groups_[group];
  if (replace_all) {
    g.families.clear();
  }
  for (MetricFamily& family : families) {
    std::string name = family.name;
    g.families[name] = std::move(family);
  }
  g.pushed_at = now_ms;
  return Status::ok();
}

Status PushRegistry::remove(const LabelSet& group) {
  std::lock_guard lock(mu_);
  if (groups_.erase(group) == 0) {
    return Status(StatusCode::kNotFound, "no such group");
  }
  return Status::ok();
}

void PushRegistry::snapshot(MetricBatch& out) const {
  std::lock_guard lock(mu_);
  if (groups_.empty()) {
    return;
  }
  // The Pushgateway's two: 0 for a group that never succeeded, or never failed.
  auto& failed = out.family(kFailureTimeFamily, "Last Unix time when changing this group failed.",
                            MetricType::kGauge);
  auto& pushed = out.family(kPushTimeFamily, "Last Unix time when changing this group succeeded.",
                            MetricType::kGauge);
  for (const auto& [key, g] : groups_) {
    for (const auto& [name, f] : g.families) {
      MetricFamily& dest = out.family(name, f.help, f.type);
      dest.samples.insert(dest.samples.end(), f.samples.begin(), f.samples.end());
    }
    const LabelSet labels = seriesLabels(key, {});
    MetricBatch::add(failed, labels, static_cast<double>(g.failed_at) / 1000.0);
    MetricBatch::add(pushed, labels, static_cast<double>(g.pushed_at) / 1000.0);
  }
}

}  // namespace vigil::collectors
