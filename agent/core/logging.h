#pragma once
// spdlog set up for structured output: logfmt (ts=… level=… msg="…") or one JSON object per
// line, on stderr. Messages are written as `text key=value …`; the whole message is quoted.

#include "vigil/config.h"

namespace vigil {

void setupLogging(LogLevel level, LogFormat format);
void setLogLevel(LogLevel level);

}  // namespace vigil
