// Alert identity, merging and validation with Alertmanager 0.25's semantics.
#include "vigil/alerting/alert.h"

#include <algorithm>
#include <cstdio>
#include <tuple>
#include <utility>

namespace vigil::alerting {

std::string fingerprintHex(uint64_t fp) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fp));
  return buf;
}

namespace {

// The start and end mergeAlerts gives, without copying either alert.
std::pair<int64_t, int64_t> mergedTimes(const Alert& a, const Alert& b, int64_t now) {
  // `younger` is the one updated last; ties go to the incoming one (b).
  const Alert& older = b.updated_at < a.updated_at ? b : a;
  const Alert& younger = b.updated_at < a.updated_at ? a : b;
  const int64_t starts_at = std::min(older.starts_at, younger.starts_at);
  int64_t ends_at = younger.ends_at;
  if (younger.resolvedAt(now)) {
    // Both resolved: the latest explicit end wins.
    if (older.resolvedAt(now) && older.ends_at > younger.ends_at) {
      ends_at = older.ends_at;
    }
  } else if (older.ends_at > younger.ends_at && !older.timeout) {
    // A later end that was given explicitly beats one made up from resolve_timeout.
    ends_at = older.ends_at;
  }
  return {starts_at, ends_at};
}

}  // namespace

Alert mergeAlerts(const Alert& a, const Alert& b, int64_t now) {
  Alert out = b.updated_at < a.updated_at ? a : b;
  std::tie(out.starts_at, out.ends_at) = mergedTimes(a, b, now);
  return out;
}

Status normaliseIncoming(Alert& alert, int64_t now, int64_t resolve_timeout_ms) {
  std::erase_if(alert.labels, [](const Label& l) { return l.value.empty(); });
  std::sort(alert.labels.begin(), alert.labels.end());
  std::sort(alert.annotations.begin(), alert.annotations.end());
  if (alert.labels.empty()) {
    return invalidArgument("at least one label pair required");
  }
  for (std::size_t i = 0; i < alert.labels.size(); ++i) {
    if (!isValidLabelName(alert.labels[i].name)) {
      return invalidArgument("invalid label set: invalid name \"" + alert.labels[i].name + "\"");
    }
    if (i > 0 && alert.labels[i].name == alert.labels[i - 1].name) {
      return invalidArgument("invalid label set: duplicate label \"" + alert.labels[i].name + "\"");
    }
  }
  for (const Label& a : alert.annotations) {
    if (!isValidLabelName(a.name)) {
      return invalidArgument("invalid annotations: invalid name \"" + a.name + "\"");
    }
  }
  alert.updated_at = now;
  if (alert.starts_at == 0) {
    alert.starts_at = alert.ends_at != 0 ? alert.ends_at : now;
  }
  if (alert.ends_at == 0) {
    alert.timeout = true;
    alert.ends_at = now + resolve_timeout_ms;
  }
  if (alert.ends_at < alert.starts_at) {
    return invalidArgument("start time must be before end time");
  }
  return Status::ok();
}

namespace {

void appendSized(std::string& out, std::string_view s) {
  // A varint length, then the bytes.
  std::size_t n = s.size();
  while (n >= 0x80) {
    out += static_cast<char>((n & 0x7f) | 0x80);
    n >>= 7;
  }
  out += static_cast<char>(n);
  out += s;
}

std::string_view readSized(std::string_view data, std::size_t& pos) {
  std::size_t n = 0;
  for (int shift = 0;; shift += 7) {
    const auto byte = static_cast<unsigned char>(data[pos++]);
    n |= static_cast<std::size_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      break;
    }
  }
  std::string_view out = data.substr(pos, n);
  pos += n;
  return out;
}

}  // namespace

AlertStore::Packed AlertStore::pack(const Alert& a) {
  Packed p;
  p.times = {a.starts_at, a.ends_at, a.updated_at};
  p.timeout = a.timeout;
  p.labels = static_cast<uint16_t>(a.labels.size());
  p.annotations = static_cast<uint16_t>(a.annotations.size());
  // Exactly one allocation of exactly the packed size.
  auto sized = [](std::size_t n) {
    std::size_t bytes = 1;
    for (; n >= 0x80; n >>= 7) {
      ++bytes;
    }
    return bytes;
  };
  std::size_t size = sized(a.generator_url.size()) + a.generator_url.size();
  for (const LabelSet* set : {&a.labels, &a.annotations}) {
    for (const Label& l : *set) {
      size += sized(l.name.size()) + l.name.size() + sized(l.value.size()) + l.value.size();
    }
  }
  p.data.reserve(size);
  for (const LabelSet* set : {&a.labels, &a.annotations}) {
    for (const Label& l : *set) {
      appendSized(p.data, l.name);
      appendSized(p.data, l.value);
    }
  }
  appendSized(p.data, a.generator_url);
  return p;
}

bool AlertStore::samePayload(const Packed& p, const Alert& a) {
  if (p.labels != a.labels.size() || p.annotations != a.annotations.size()) {
    return false;
  }
  std::size_t pos = 0;
  for (const LabelSet* set : {&a.labels, &a.annotations}) {
    for (const Label& l : *set) {
      if (readSized(p.data, pos) != l.name || readSized(p.data, pos) != l.value) {
        return false;
      }
    }
  }
  return readSized(p.data, pos) == a.generator_url;
}

Alert AlertStore::unpack(const Packed& p) {
  Alert a;
  a.starts_at = p.times.starts_at;
  a.ends_at = p.times.ends_at;
  a.updated_at = p.times.updated_at;
  a.timeout = p.timeout;
  std::size_t pos = 0;
  a.labels.reserve(p.labels);
  a.annotations.reserve(p.annotations);
  for (int i = 0; i < p.labels + p.annotations; ++i) {
    std::string name(readSized(p.data, pos));
    std::string value(readSized(p.data, pos));
    (i < p.labels ? a.labels : a.annotations).push_back({std::move(name), std::move(value)});
  }
  a.generator_url = std::string(readSized(p.data, pos));
  return a;
}

void AlertStore::store(Packed& stored, bool fresh, Alert& alert, int64_t now) {
  if (!fresh) {
    const Packed& old = stored;
    const bool overlaps =
        !(alert.starts_at > old.times.ends_at || alert.ends_at < old.times.starts_at);
    if (overlaps) {
      if (alert.updated_at >= old.times.updated_at) {
        // The usual case, a newer send: only the stored version's times matter to the merge,
        // so it need not be unpacked.
        Alert times_only;
        times_only.starts_at = old.times.starts_at;
        times_only.ends_at = old.times.ends_at;
        times_only.updated_at = old.times.updated_at;
        times_only.timeout = old.timeout;
        std::tie(alert.starts_at, alert.ends_at) = mergedTimes(times_only, alert, now);
      } else {
        alert = mergeAlerts(unpack(old), alert, now);
      }
    }
    // Most sends repeat what is stored: then only the times change, and nothing is allocated.
    if (samePayload(stored, alert)) {
      stored.times = {alert.starts_at, alert.ends_at, alert.updated_at};
      stored.timeout = alert.timeout;
      return;
    }
  }
  stored = pack(alert);
}

std::optional<Alert> AlertStore::get(uint64_t fp) const {
  std::lock_guard lock(mu_);
  const Packed* p = alerts_.find(fp);
  if (p == nullptr) {
    return std::nullopt;
  }
  return unpack(*p);
}

std::optional<AlertStore::Times> AlertStore::times(uint64_t fp) const {
  std::lock_guard lock(mu_);
  const Packed* p = alerts_.find(fp);
  if (p == nullptr) {
    return std::nullopt;
  }
  return p->times;
}

std::vector<Alert> AlertStore::list() const {
  std::lock_guard lock(mu_);
  // In fingerprint order, so that lists and what is built from them do not change from call
  // to call.
  std::vector<std::pair<uint64_t, const Packed*>> entries;
  entries.reserve(alerts_.size());
  alerts_.forEach([&](uint64_t fp, const Packed& p) { entries.emplace_back(fp, &p); });
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Alert> out;
  out.reserve(entries.size());
  for (const auto& [fp, p] : entries) {
    out.push_back(unpack(*p));
  }
  return out;
}

void AlertStore::shiftActive(int64_t before_ms, int64_t by_ms) {
  std::lock_guard lock(mu_);
  alerts_.forEach([&](uint64_t, Packed& a) {
    if (!a.times.resolvedAt(before_ms) && a.times.ends_at != 0) {
      // All three, so that the alert's age and its overlap with the next update (which
      // decides between merging and a new occurrence) are what they were.
      a.times.starts_at += by_ms;
      a.times.ends_at += by_ms;
      a.times.updated_at += by_ms;
    }
  });
}

std::size_t AlertStore::collectResolvedBefore(int64_t cutoff) {
  std::lock_guard lock(mu_);
  return alerts_.eraseIf([&](uint64_t, const Packed& p) { return p.times.resolvedAt(cutoff); });
}

std::size_t AlertStore::size() const {
  std::lock_guard lock(mu_);
  return alerts_.size();
}

}  // namespace vigil::alerting
