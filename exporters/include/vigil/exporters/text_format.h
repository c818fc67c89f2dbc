#pragma once
// The Prometheus text exposition format 0.0.4, as node_exporter and Prometheus read it.

#include <memory>
#include <mutex>
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

/// renderTextFormat for an endpoint rendered again and again (/metrics): what does not change
/// between scrapes is kept. A batch's HELP and TYPE lines and the `name{labels} ` before each
/// of its values are written once per layout (MetricBatch::layout(): batches with the same
/// layout have the same families and series) and copied after that; the order of families is
/// sorted again only when a batch's layout changes. While the order holds, a line whose value
/// has the same bits as at the last render is copied from the last render's text, with the
/// unchanged lines around it in one go. Batches without a layout are written in full.
/// Thread-safe; a scrape that comes while another renders renders without the cache.
class TextRenderer {
 public:
  TextRenderer();
  ~TextRenderer();
  TextRenderer(const TextRenderer&) = delete;
  TextRenderer& operator=(const TextRenderer&) = delete;

  /// Appends the exposition of `batches` to `out`, as renderTextFormat would.
  void render(std::span<const MetricBatch* const> batches, std::string& out);

 private:
  struct Cache;
  std::mutex mu_;
  std::unique_ptr<Cache> cache_;
};

/// Appends `v` as the text format writes floats: shortest round-trip digits, NaN, +Inf, -Inf.
void appendFloat(std::string& out, double v);

/// Appends a label value with \\, \" and \n escaped.
void appendEscapedLabelValue(std::string& out, std::string_view value);

/// Appends HELP text with \\ and \n escaped (quotes stay as they are in 0.0.4).
void appendEscapedHelp(std::string& out, std::string_view help);

}  // namespace vigil::exporters
