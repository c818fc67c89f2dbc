#pragma once
// Internal: reading an Alertmanager configuration document from an already parsed YAML node,
// shared by parseAlertingConfig and the `alerting` section of vigil's own configuration.

#include <string>

#include "vigil/alerting/config.h"
#include "vigil/yaml_reader.h"

namespace vigil::alerting {

/// Reads `root` (the document, or vigil's `alerting` section without `config_file`) into `out`,
/// reporting every problem to `reader`; `field` prefixes error paths ("" or "alerting").
void readAlertingDocument(YamlReader& reader, const YAML::Node& root, const std::string& field,
                          AlertingConfig& out);

/// Reads vigil's `alertmanagers` list: `url`, `timeout`, `http_config`.
void readAlertmanagerTargets(YamlReader& reader, const YAML::Node& node, const std::string& field,
                             std::vector<AlertmanagerTarget>& out);

/// Reads the HTTP client keys (authorization, basic_auth, bearer_token[_file], tls_config,
/// headers) of `node`, a mapping whose set of keys the caller has checked.
void readHttpClientFields(YamlReader& reader, const YAML::Node& node, const std::string& field,
                          HttpClientConfig& out);

}  // namespace vigil::alerting
