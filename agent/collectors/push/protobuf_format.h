#pragma once
// Pushed bodies in the protobuf exposition format: length-delimited io.prometheus.client
// MetricFamily messages, what Go's push client sends unless told to use the text format. Read
// into the same families the text format gives: a histogram's _bucket (with the +Inf bucket
// added where the client left it out, as Prometheus does), _sum and _count, a summary's
// quantiles, _sum and _count, le and quantile labels written as Go writes them.

#include <cstddef>
#include <string_view>

#include "vigil/status.h"
#include "vigil/text_parser.h"

namespace vigil::collectors {

/// The Content-Type of the format, without its parameters.
inline constexpr std::string_view kProtobufMediaType = "application/vnd.google.protobuf";

/// Parses `body`; bounded by `max_samples`. Errors name the message ("family 2 (name): ...").
Result<TextParseResult> parseDelimitedMetricFamilies(std::string_view body,
                                                     std::size_t max_samples);

}  // namespace vigil::collectors
