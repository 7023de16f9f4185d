#include "model/model_config.h"

#include <algorithm>
#include <charconv>
#include <climits>

#include "model/atomic_file.h"
#include "model/json_fields.h"
#include "model/read_file.h"
#include "runtime/error.h"

namespace caption {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "caption-model/1";

// Reads decoder.<key> into `out` when present; `lo` is the smallest valid value.
void read_int(const std::string& path, const json& dec, const char* key, int lo, int& out) {
  auto it = dec.find(key);
  if (it != dec.end()) out = json_int(*it, path, std::string("decoder.") + key, lo, INT_MAX);
}

void read_string(const std::string& path, const json& dec, const char* key, std::string& out) {
  auto it = dec.find(key);
  if (it == dec.end()) return;
  if (!it->is_string() || it->get_ref<const std::string&>().empty())
    throw InputError(path, std::string("decoder.") + key + ": expected a non-empty string");
  out = it->get<std::string>();
}

// The float's shortest decimal form as a double, so that 0.3f is written as 0.3, not 0.30000001192092896.
double shortest(float f) {
  char buf[32];
  auto end = std::to_chars(buf, buf + sizeof buf, f).ptr;
  double d = 0;
  std::from_chars(buf, end, d);
  return d;
}

}  // namespace

ModelConfig load_model_config(const std::string& path) {
  ModelConfig cfg;
  try {
    cfg.raw = json::parse(read_file(path));
  } catch (const json::exception& e) {  // parse errors, and numbers out of range (out_of_range.406)
    throw InputError(path, std::string("not valid JSON: ") + e.what());
  }
  if (!cfg.raw.is_object()) throw InputError(path, "expected a JSON object");

  auto fmt = cfg.raw.find("format");
  if (fmt == cfg.raw.end()) throw InputError(path, std::string("format: missing (expected \"") + kFormat + "\")");
  if (!fmt->is_string() || *fmt != kFormat)
    throw InputError(path, "format: expected \"" + std::string(kFormat) + "\", found " + fmt->dump());
  cfg.format = kFormat;

  if (auto enc = cfg.raw.find("encoder"); enc != cfg.raw.end()) cfg.encoder = parse_encoder_config(*enc, path);
  auto dec = cfg.raw.find("decoder");
  if (dec == cfg.raw.end()) {
    if (cfg.encoder) {
      cfg.has_decoder = false;
      return cfg;
    }
    throw InputError(path, "decoder: missing (a model needs a decoder, an encoder or both)");
  }
  if (!dec->is_object()) throw InputError(path, "decoder: expected an object");
  DecoderConfig& d = cfg.decoder;
  if (!dec->contains("feature_dim")) throw InputError(path, "decoder.feature_dim: missing");
  read_int(path, *dec, "feature_dim", 1, d.feature_dim);
  read_int(path, *dec, "embed_dim", 1, d.embed_dim);
  read_int(path, *dec, "hidden_dim", 1, d.hidden_dim);
  read_int(path, *dec, "max_len", 2, d.max_len);
  if (auto it = dec->find("dropout"); it != dec->end()) {
    if (!it->is_number() || !(it->get<double>() >= 0 && it->get<double>() < 1))
      throw InputError(path, "decoder.dropout: expected a number in [0, 1)");
    d.dropout = it->get<float>();
  }
  read_string(path, *dec, "vocab", d.vocab);
  read_string(path, *dec, "weights", d.weights);
  return cfg;
}

void save_model_config(const std::string& path, const ModelConfig& cfg) {
  json out = cfg.raw.is_object() ? cfg.raw : json::object();
  out["format"] = cfg.format;
  if (cfg.encoder) {
    json& enc = out["encoder"];
    if (!enc.is_object()) enc = json::object();
    enc.update(encoder_config_json(*cfg.encoder));  // typed fields over the file's, unknown keys kept
  }
  if (!cfg.has_decoder) {
    out.erase("decoder");
    write_file_atomic(path, out.dump(2) + "\n");
    return;
  }
  json& dec = out["decoder"];
  if (!dec.is_object()) dec = json::object();
  const DecoderConfig& d = cfg.decoder;
  dec["feature_dim"] = d.feature_dim;
  dec["embed_dim"] = d.embed_dim;
  dec["hidden_dim"] = d.hidden_dim;
  dec["max_len"] = d.max_len;
  dec["dropout"] = shortest(d.dropout);
  dec["vocab"] = d.vocab;
  dec["weights"] = d.weights;
  std::string text;
  try {
    text = out.dump(2) + "\n";
  } catch (const json::type_error& e) {
    throw InputError(path, std::string("cannot write config: ") + e.what());
  }
  write_file_atomic(path, text);
}

}  // namespace caption
