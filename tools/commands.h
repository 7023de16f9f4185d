#pragma once
// Subcommands of the `caption` CLI: each registers its options on the app and returns the
// function that runs it (exit status), so that main() stays a dispatcher.
#include <CLI/CLI.hpp>
#include <functional>

namespace caption::cli {

struct Command {
  CLI::App* app;           // the subcommand
  std::function<int()> run;
};

Command add_train(CLI::App& app);
Command add_score(CLI::App& app);
Command add_describe(CLI::App& app);
Command add_features(CLI::App& app);
Command add_import_keras(CLI::App& app);
Command add_eval(CLI::App& app);

}  // namespace caption::cli
