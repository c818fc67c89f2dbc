#include "push_registry.h"

#include <openssl/evp.h>

#include <algorithm>
#include <optional>
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
  if (parsed->timestamped > 0) {
    return invalidArgument("pushed metrics must not carry timestamps");
  }
  // Asked before taking the lock: what answers may take locks of its own.
  std::vector<std::optional<ExportedFamily>> own(parsed->batch.families().size());
  if (exported) {
    for (std::size_t i = 0; i < own.size(); ++i) {
      own[i] = exported(parsed->batch.families()[i].name);
    }
  }
  std::lock_guard lock(mu_);
  const bool room = groups_.find(group) != groups_.end() || groups_.size() < kMaxGroups;
  // Served together on /metrics, a family has one type: a push that would give it another
  // than another group, or vigil itself, gives it is refused, as the Pushgateway refuses one
  // inconsistent with its groups or its own metrics. Like the Pushgateway, the group records
  // the failure (push_failure_time_seconds), and is made for it if new; a body that does not
  // parse is refused before that, and leaves no trace.
  auto refuse = [&](const MetricFamily& f, MetricType other, const std::string& where) {
    if (room) {
      groups_[group].failed_at = now_ms;
    }
    return invalidArgument("family " + f.name + " is a " + std::string(metricTypeName(f.type)) +
                           " here but a " + std::string(metricTypeName(other)) + " " + where);
  };
  for (std::size_t i = 0; i < own.size(); ++i) {
    const MetricFamily& f = parsed->batch.families()[i];
    if (f.name == kPushTimeFamily || f.name == kFailureTimeFamily) {
      continue;  // dropped below
    }
    if (own[i] && own[i]->type != f.type) {
      return refuse(f, own[i]->type, "exported by " + own[i]->exporter);
    }
    for (const auto& [other_key, other] : groups_) {
      auto same = other.families.find(f.name);
      if (other_key != group && same != other.families.end() && same->second.type != f.type) {
        return refuse(f, same->second.type, "in the group " + labelsToString(other_key));
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
  for (const auto& f : parsed->batch.families()) {
    if (f.name == kPushTimeFamily || f.name == kFailureTimeFamily) {
      // Its series would be the very ones kept for the group (the grouping key's labels win):
      // like the Pushgateway, vigil keeps its own and drops the pushed ones.
      continue;
    }
    MetricFamily family = f;
    // The grouping key's labels win over the pushed ones, as in the Pushgateway.
    for (auto& sample : family.samples) {
      for (const auto& k : group) {
        std::erase_if(sample.labels, [&](const Label& l) { return l.name == k.name; });
        sample.labels.push_back(k);
      }
      std::sort(sample.labels.begin(), sample.labels.end());
    }
    g.families[f.name] = std::move(family);
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
    MetricBatch::add(failed, key, static_cast<double>(g.failed_at) / 1000.0);
    MetricBatch::add(pushed, key, static_cast<double>(g.pushed_at) / 1000.0);
  }
}

}  // namespace vigil::collectors
