// caption train: fit the decoder on captions + precomputed image features.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "model/model_dir.h"
#include "model/trainer.h"
#include "tools/commands.h"
#include "tools/device_options.h"
#include "tools/loss_plot.h"
#include "tools/progress.h"

namespace caption::cli {
namespace {

class CliObserver : public TrainObserver {
 public:
  explicit CliObserver(std::string out) : progress_(Progress::stderr_is_terminal()), out_(std::move(out)) {}
  void message(const std::string& line) override { progress_.line(line); }
  void step(const StepProgress& p) override {
    char buf[160];
    std::snprintf(buf, sizeof buf, "epoch %d/%d step %zu/%zu loss %.4f %.0f tok/s ETA %s", p.epoch, p.epochs,
                  p.step, p.steps, p.loss, p.tokens_per_s, format_duration(p.eta_s).c_str());
    progress_.update(double(p.step) / p.steps, buf);
  }
  void epoch(const EpochMetrics& m) override {
    char buf[200];
    std::snprintf(buf, sizeof buf, "epoch %d: train loss %.4f, val loss %.4f%s, %.0f tokens/s, %.1f s", m.epoch,
                  m.train_loss, m.val_loss, m.best ? " (best: model saved)" : "", m.tokens_per_s, m.seconds);
    progress_.line(buf);
    // From metrics.jsonl, so that a resumed run plots the epochs before it too.
    std::vector<double> train, val;
    std::ifstream in(join_path(out_, "metrics.jsonl"));
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object()) continue;
      train.push_back(j.value("train_loss", NAN));
      val.push_back(j["val_loss"].is_number() ? j["val_loss"].get<double>() : NAN);
    }
    try {  // the plot is a convenience: never lose a training run over it
      write_loss_plot(join_path(out_, "loss.png"), train, val);
    } catch (const std::exception& e) {
      progress_.line(std::string("warning: ") + e.what());
    }
  }

 private:
  Progress progress_;
  std::string out_;
};

}  // namespace

Command add_train(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "Train the decoder on captions and precomputed image features");
  auto opt = std::make_shared<TrainOptions>();
  auto device = std::make_shared<DeviceOptions>();
  sub->add_option("--captions", opt->captions, "Flickr8k.token.txt or Kaggle captions.txt")->required()->check(CLI::ExistingFile);
  sub->add_option("--features", opt->features,
                  "image features (.safetensors, one 1-D tensor per image; several files, such as the shards of "
                  "`caption features --shard`, are read as one)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--train-list", opt->train_list, "training image names, one per line")->required()->check(CLI::ExistingFile);
  sub->add_option("--val-list", opt->val_list, "validation image names, one per line")->required()->check(CLI::ExistingFile);
  sub->add_option("--glove", opt->glove, "GloVe text file to initialise word embeddings")->check(CLI::ExistingFile);
  sub->add_option("--encoder", opt->encoder_dir,
                  "model directory whose encoder made --features: its encoder goes into --out too, so the "
                  "trained model captions images")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--out", opt->out, "model directory to write (checkpoint, metrics, loss plot)")->required();
  sub->add_option("--epochs", opt->epochs, "epochs")->capture_default_str();
  sub->add_option("--batch", opt->batch, "captions per batch")->capture_default_str();
  sub->add_option("--lr", opt->lr, "Adam learning rate")->capture_default_str();
  sub->add_option("--dropout", opt->dropout, "dropout on image features and word embeddings")->capture_default_str();
  sub->add_option("--clip", opt->clip, "clip the global gradient norm to this (0: off)")->capture_default_str();
  sub->add_option("--seed", opt->seed, "seed for initialisation, shuffling and dropout")->capture_default_str();
  sub->add_option("--min-count", opt->min_count, "minimum word count for the vocabulary")->capture_default_str();
  sub->add_option("--max-len", opt->max_len, "maximum caption length in tokens, <start> and <end> included")->capture_default_str();
  add_device_options(sub, *device);
  add_graph_option(sub, *device);
  sub->add_flag("--resume", opt->resume, "continue from the checkpoint in --out");
  return {sub, [opt, device] {
            opt->device = device->parse();
            opt->memory_limit = device->memory_limit_bytes();
            opt->cuda_graphs = device->cuda_graphs;
            CliObserver obs(opt->out);
            train(*opt, obs);
            return 0;
          }};
}

}  // namespace caption::cli
