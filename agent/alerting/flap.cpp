#include "vigil/alerting/flap.h"

#include <algorithm>
#include <string>

namespace vigil::alerting {

bool FlapDamper::isFlapping(const History& h) const {
  return static_cast<int>(h.changes.size()) >= settings_.threshold;
}

bool FlapDamper::apply(Alert& alert, uint64_t fp, const std::optional<AlertStore::Times>& stored,
                       int64_t now) {
  if (!settings_.enabled) {
    return false;
  }
  const bool firing = alert.ends_at == 0 || alert.ends_at > now;
  auto it = history_.find(fp);
  if (it == history_.end()) {
    // No history: the store has the state it was last received in, unless a resolution was
    // held, and holds happen only to alerts with a history.
    const bool was_firing =
        stored && !(stored->ends_at != 0 && stored->ends_at <= stored->updated_at);
    if (!stored || was_firing == firing) {
      return false;
    }
    it = history_.try_emplace(fp).first;
    it->second.firing = was_firing;
  }
  History& h = it->second;
  h.last_seen = now;
  if (firing != h.firing) {
    h.changes.push_back(now);
    h.firing = firing;
  }
  std::erase_if(h.changes, [&](int64_t t) { return t < now - settings_.window.count(); });
  if (!isFlapping(h)) {
    return false;
  }
  // Flapping: held firing until `hold` passes without a change.
  const int64_t held_until = h.changes.back() + settings_.hold.count();
  if (!firing && held_until > now) {
    alert.ends_at = held_until;
    ++held_;
  }
  std::erase_if(alert.annotations, [](const Label& l) { return l.name == "flapping"; });
  alert.annotations.push_back({"flapping", std::to_string(h.changes.size()) + " state changes in " +
                                               formatDuration(settings_.window) +
                                               "; held firing until stable for " +
                                               formatDuration(settings_.hold)});
  std::sort(alert.annotations.begin(), alert.annotations.end());
  return true;
}

std::size_t FlapDamper::flapping(int64_t now) const {
  std::size_t n = 0;
  for (const auto& [fp, h] : history_) {
    if (!h.changes.empty() && h.changes.back() >= now - settings_.window.count() && isFlapping(h)) {
      ++n;
    }
  }
  return n;
}

void FlapDamper::collect(int64_t now) {
  std::erase_if(history_, [&](const auto& kv) {
    return kv.second.last_seen < now - settings_.window.count() - settings_.hold.count();
  });
}

}  // namespace vigil::alerting
