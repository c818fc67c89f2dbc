#pragma once
// `vigil anomaly score [--detector NAME] FILE.csv`: a `timestamp,value` series through a
// detector, online, with the same code the agent runs.

#include <string>
#include <vector>

namespace vigil {

/// Runs `vigil anomaly ARGS...`; returns the exit code.
int anomalyCommand(const std::vector<std::string>& args);

}  // namespace vigil
