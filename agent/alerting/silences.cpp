// Silences with Alertmanager 0.25's rules.
#include "vigil/alerting/silences.h"

#include <algorithm>
#include <cstdio>
#include <random>

namespace vigil::alerting {

namespace {

// A random (version 4) UUID, as Alertmanager gives silences.
std::string newUuid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t hi = (rng() & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  const uint64_t lo = (rng() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xffff),
                static_cast<unsigned long long>(hi & 0xffff),
                static_cast<unsigned long long>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

bool sameMatchers(const std::vector<LabelMatcher>& a, const std::vector<LabelMatcher>& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].type() != b[i].type() || a[i].name() != b[i].name() || a[i].value() != b[i].value()) {
      return false;
    }
  }
  return true;
}

}  // namespace

const char* silenceStateName(SilenceState s) {
  switch (s) {
    case SilenceState::kPending:
      return "pending";
    case SilenceState::kActive:
      return "active";
    default:
      return "expired";
  }
}

SilenceState Silence::stateAt(int64_t now) const {
  if (now < starts_at) {
    return SilenceState::kPending;
  }
  if (now > ends_at) {
    return SilenceState::kExpired;
  }
  return SilenceState::kActive;
}

Status Silences::validate(const Silence& s) const {
  if (s.matchers.empty()) {
    return invalidArgument("at least one matcher required");
  }
  // A silence must not match everything: one of its matchers must reject the empty string.
  if (std::all_of(s.matchers.begin(), s.matchers.end(),
                  [](const LabelMatcher& m) { return m.matches(""); })) {
    return invalidArgument("at least one matcher must not match the empty string");
  }
  if (s.starts_at == 0 || s.ends_at == 0) {
    return invalidArgument("invalid zero start or end timestamp");
  }
  if (s.ends_at < s.starts_at) {
    return invalidArgument("end time must not be before start time");
  }
  return Status::ok();
}

Result<std::string> Silences::set(Silence s, int64_t now) {
  sortMatchers(s.matchers);
  if (Status st = validate(s); !st.isOk()) {
    return st;
  }
  std::lock_guard lock(mu_);
  s.updated_at = now;
  if (!s.id.empty()) {
    auto it = std::find_if(silences_.begin(), silences_.end(),
                           [&](const Silence& x) { return x.id == s.id; });
    if (it == silences_.end()) {
      return Status(StatusCode::kNotFound, "silence " + s.id + " not found");
    }
    const SilenceState state = it->stateAt(now);
    const bool in_place =
        sameMatchers(it->matchers, s.matchers) &&
        ((state == SilenceState::kActive && s.starts_at == it->starts_at && s.ends_at >= now) ||
         (state == SilenceState::kPending && s.starts_at >= now));
    if (in_place) {
      s.muted = it->muted;
      *it = std::move(s);
      return it->id;
    }
    // Otherwise the old one ends (keeping its history) and a new one replaces it.
    if (state == SilenceState::kActive) {
      it->ends_at = now;
      it->updated_at = now;
    } else if (state == SilenceState::kPending) {
      it->starts_at = now;
      it->ends_at = now;
      it->updated_at = now;
    }
  }
  if (s.ends_at < now) {
    return invalidArgument("end time can't be in the past");
  }
  s.starts_at = std::max(s.starts_at, now);
  s.id = newUuid();
  s.muted.clear();
  silences_.push_back(std::move(s));
  return silences_.back().id;
}

Status Silences::expire(const std::string& id, int64_t now) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(silences_.begin(), silences_.end(),
                         [&](const Silence& x) { return x.id == id; });
  if (it == silences_.end()) {
    return Status(StatusCode::kNotFound, "silence " + id + " not found");
  }
  switch (it->stateAt(now)) {
    case SilenceState::kExpired:
      return invalidArgument("silence " + id + " already expired");
    case SilenceState::kPending:
      it->starts_at = now;
      it->ends_at = now;
      break;
    case SilenceState::kActive:
      it->ends_at = now;
      break;
  }
  it->updated_at = now;
  return Status::ok();
}

std::optional<Silence> Silences::get(const std::string& id) const {
  std::lock_guard lock(mu_);
  for (const auto& s : silences_) {
    if (s.id == id) {
      return s;
    }
  }
  return std::nullopt;
}

std::vector<Silence> Silences::list() const {
  std::lock_guard lock(mu_);
  return silences_;
}

bool Silences::empty() const {
  std::lock_guard lock(mu_);
  return silences_.empty();
}

std::vector<std::string> Silences::mutes(const LabelSet& labels, uint64_t fp, int64_t now) {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (auto& s : silences_) {
    if (s.stateAt(now) == SilenceState::kActive && s.matches(labels)) {
      ids.push_back(s.id);
      if (s.expire_on_resolve && std::find(s.muted.begin(), s.muted.end(), fp) == s.muted.end()) {
        s.muted.push_back(fp);
      }
    }
  }
  return ids;
}

std::vector<std::string> Silences::silencing(const LabelSet& labels, int64_t now) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (const auto& s : silences_) {
    if (s.stateAt(now) == SilenceState::kActive && s.matches(labels)) {
      ids.push_back(s.id);
    }
  }
  return ids;
}

std::size_t Silences::collectExpiredBefore(int64_t cutoff) {
  std::lock_guard lock(mu_);
  return std::erase_if(silences_, [&](const Silence& s) { return s.ends_at < cutoff; });
}

void Silences::restore(std::vector<Silence> silences) {
  std::lock_guard lock(mu_);
  silences_ = std::move(silences);
}

}  // namespace vigil::alerting
