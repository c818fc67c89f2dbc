#pragma once
// A label set as the JSON object the APIs, webhooks and the Alertmanager forwarder write.
// Include only from .cpp files that already build JSON.

#include <nlohmann/json.hpp>

#include "vigil/metric.h"

namespace vigil {

/// `{"name": "value", ...}`, in the set's order.
inline nlohmann::json labelsJson(const LabelSet& labels) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& l : labels) {
    out[l.name] = l.value;
  }
  return out;
}

}  // namespace vigil
