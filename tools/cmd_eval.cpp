// caption eval: BLEU-1..4, ROUGE-L and CIDEr-D of the captions `caption describe` wrote,
// against reference captions.
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "model/caption_metrics.h"
#include "model/captions.h"
#include "model/read_file.h"
#include "model/vocabulary.h"
#include "runtime/error.h"
#include "tools/commands.h"

namespace caption::cli {
namespace {

// describe's output: JSONL ({"image","caption"} per line) or, when the first line is a CSV
// header ("image,caption", or "image,path,caption" from images), its CSV (which read_captions
// parses).
std::vector<CaptionRecord> read_results(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<CaptionRecord> results;
  bool first = true, csv = false;
  for_each_line(text, [&](size_t line_no, std::string_view line) {
    if (csv || trim(line).empty()) return;
    if (first) {
      first = false;
      csv = is_caption_csv_header(line);
      if (csv) return;
    }
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw InputError(path, at_line(line_no, "not valid JSON"));
    if (!j.is_object() || !j.contains("image") || !j["image"].is_string() || !j.contains("caption") ||
        !j["caption"].is_string())
      throw InputError(path, at_line(line_no, "expected {\"image\": ..., \"caption\": ...} with string values"));
    results.push_back({j["image"].get<std::string>(), j["caption"].get<std::string>()});
  });
  if (csv) results = read_captions(path);
  if (results.empty()) throw InputError(path, "no captions");
  return results;
}

}  // namespace

Command add_eval(CLI::App& app) {
  auto* sub = app.add_subcommand("eval", "BLEU-1..4, ROUGE-L and CIDEr-D of describe's captions (coco-caption)");
  struct Args {
    std::string results, references, images;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--results", a->results, "captions from `caption describe` (JSONL or CSV)")
      ->required()->check(CLI::ExistingFile);
  sub->add_option("--references", a->references, "reference captions (Flickr8k token file or Kaggle CSV)")
      ->required()->check(CLI::ExistingFile);
  sub->add_option("--images", a->images, "only these images (one name per line); each needs a result")
      ->check(CLI::ExistingFile);
  return {sub, [a] {
            auto results = read_results(a->results);
            std::map<std::string, std::vector<Tokens>> refs_of;
            for (const auto& r : read_captions(a->references)) refs_of[r.image].push_back(clean_caption(r.text));
            std::set<std::string> wanted, seen;
            if (!a->images.empty()) {
              auto list = read_image_list(a->images);
              wanted.insert(list.begin(), list.end());
            }
            std::vector<Tokens> candidates;
            std::vector<std::vector<Tokens>> references;
            std::vector<std::string> unreferenced;
            for (const auto& r : results) {
              if (!wanted.empty() && !wanted.count(r.image)) continue;
              if (!seen.insert(r.image).second) throw InputError(a->results, "more than one caption for " + r.image);
              auto it = refs_of.find(r.image);
              if (it == refs_of.end()) {
                unreferenced.push_back(r.image);
                continue;
              }
              candidates.push_back(clean_caption(r.text));
              references.push_back(it->second);
            }
            if (!unreferenced.empty())
              throw InputError(a->references, std::to_string(unreferenced.size()) +
                                                  " images of the results have no reference caption, e.g. " +
                                                  unreferenced.front());
            for (const auto& name : wanted)
              if (!seen.count(name)) throw InputError(a->results, "no caption for " + name + " (listed in " + a->images + ")");
            if (candidates.empty()) throw InputError(a->results, "no captions to evaluate");
            CaptionScores s = score_captions(candidates, references);
            nlohmann::ordered_json out = {{"images", candidates.size()}};
            for (int n = 0; n < 4; ++n) out["BLEU-" + std::to_string(n + 1)] = s.bleu[n];
            out["ROUGE-L"] = s.rouge_l;
            out["CIDEr-D"] = s.cider_d;
            std::cout << out.dump() << std::endl;
            return 0;
          }};
}

}  // namespace caption::cli
