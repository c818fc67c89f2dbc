#pragma once
// The Prometheus text exposition format 0.0.4, as node_exporter and Prometheus read it.

#include <span>
#include <string>
#include <string_view>

#include "vigil/metric.h"

namespace vigil::exporters {

inline constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every family of every batch into `out` (appended). Families with the same name in
/// several batches are merged into one contiguous group with one HELP and TYPE (the first
/// batch's), and families are sorted by name, so the output is valid however the batches
/// overlap.
void renderTextFormat(std::span<const MetricBatch* const> batches, std::string& out);

/// Appends `v` as the text format writes floats: shortest round-trip digits, NaN, +Inf, -Inf.
void appendFloat(std::string& out, double v);

/// Appends a label value with \\, \" and \n escaped.
void appendEscapedLabelValue(std::string& out, std::string_view value);

/// Appends HELP text with \\ and \n escaped (quotes stay as they are in 0.0.4).
void appendEscapedHelp(std::string& out, std::string_view help);

}  // namespace vigil::exporters
