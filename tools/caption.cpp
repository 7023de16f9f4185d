// caption: train and run the image-captioning model from the command line.
#include <cstdio>
#include <vector>

#include "tools/build_info.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"caption: image captioning engine (ResNet50 + LSTM merge decoder), CPU and CUDA"};
  app.set_version_flag("--version", caption::cli::build_info);
  app.require_subcommand(1);
  std::vector<caption::cli::Command> commands;
  for (auto add : {caption::cli::add_train, caption::cli::add_score, caption::cli::add_describe,
                    caption::cli::add_features, caption::cli::add_import_keras, caption::cli::add_eval})
    commands.push_back(add(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "caption: error: %s (see --help)\n", e.what());  // one line, as every error
    return e.get_exit_code();
  }
  for (auto& cmd : commands) {
    if (!cmd.app->parsed()) continue;
    try {
      return cmd.run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "caption %s: error: %s\n", cmd.app->get_name().c_str(), e.what());
      return 1;
    }
  }
  return 1;
}
