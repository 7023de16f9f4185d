#include "model/atomic_file.h"

#include "tests/io_test_util.h"

namespace caption {
namespace {

using test::ScratchDir;

size_t entries(const std::filesystem::path& dir) {
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator(dir); it != std::filesystem::directory_iterator(); ++it) ++n;
  return n;
}

TEST(AtomicFile, WritesThenReplaces) {
  ScratchDir dir;
  const std::string path = dir.path("out.txt");
  write_file_atomic(path, "first version");
  EXPECT_EQ(test::read_bytes(path), "first version");
  write_file_atomic(path, std::string_view("new\0bytes", 9));
  EXPECT_EQ(test::read_bytes(path), std::string("new\0bytes", 9));
  write_file_atomic(path, "");
  EXPECT_EQ(test::read_bytes(path), "");
  EXPECT_EQ(entries(dir.dir()), 1u);  // no temporary left behind
}

TEST(AtomicFile, RelativePathInCurrentFolder) {
  ScratchDir dir;
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.dir());
  write_file_atomic("plain.txt", "x");
  std::filesystem::current_path(cwd);
  EXPECT_EQ(test::read_bytes(dir.path("plain.txt")), "x");
}

TEST(AtomicFile, MissingFolderIsInputError) {
  ScratchDir dir;
  const std::string path = dir.path("no/such/folder/out.txt");
  EXPECT_TRUE(test::throws_input_error([&] { write_file_atomic(path, "x"); }, {path, "No such file"}));
  EXPECT_EQ(entries(dir.dir()), 0u);
}

// rename() cannot replace a folder: the error must leave the folder and no temporary behind.
TEST(AtomicFile, FailedRenameLeavesNoTemporary) {
  ScratchDir dir;
  const std::string path = dir.path("target");
  std::filesystem::create_directory(path);
  EXPECT_TRUE(test::throws_input_error([&] { write_file_atomic(path, "x"); }, {path, "cannot replace"}));
  EXPECT_TRUE(std::filesystem::is_directory(path));
  EXPECT_EQ(entries(dir.dir()), 1u);
}

// A file written in pieces is invisible until commit; an abandoned one leaves nothing.
TEST(AtomicFile, StreamedWritesAppearOnlyOnCommit) {
  ScratchDir dir;
  const std::string path = dir.path("stream.jsonl");
  write_file_atomic(path, "old");
  {
    AtomicFile f(path);
    f.write("line 1\n");
    f.write("line 2\n");
    EXPECT_EQ(test::read_bytes(path), "old");
    f.commit();
    EXPECT_THROW(f.write("late"), std::logic_error);
  }
  EXPECT_EQ(test::read_bytes(path), "line 1\nline 2\n");
  {
    AtomicFile f(dir.path("abandoned.jsonl"));
    f.write("partial");
    EXPECT_EQ(entries(dir.dir()), 2u);  // stream.jsonl and the temporary
  }
  EXPECT_EQ(entries(dir.dir()), 1u);
}

// A partial file outlives its writer once it holds something; resuming keeps its complete
// lines only, and commit renames it into place.
TEST(PartialFile, KeepsCompleteLinesAndCommits) {
  ScratchDir dir;
  const std::string path = dir.path("out.txt"), partial = path + ".partial";
  { PartialFile f(path, false); }
  EXPECT_EQ(entries(dir.dir()), 0u);  // nothing written: nothing left
  {
    PartialFile f(path, false);
    f.append("one\ntwo\nthr");
    f.sync();
  }
  EXPECT_EQ(test::read_bytes(partial), "one\ntwo\nthr");
  {
    PartialFile f(path, true);
    EXPECT_EQ(f.take_kept(), "one\ntwo\n");
    EXPECT_EQ(f.take_kept(), "");  // handed over once
    f.append("three\n");
    f.commit();
  }
  EXPECT_EQ(test::read_bytes(path), "one\ntwo\nthree\n");
  EXPECT_EQ(entries(dir.dir()), 1u);
  PartialFile fresh(path, false);  // without resume an old partial file is not read
  EXPECT_EQ(fresh.take_kept(), "");
}

// discard() is for jobs whose result went elsewhere: the partial file goes, kept lines and all,
// and nothing appears under the target's name.
TEST(PartialFile, DiscardRemovesIt) {
  ScratchDir dir;
  const std::string path = dir.path("out.safetensors");
  {
    PartialFile f(path, false);
    f.append("row\n");
    f.sync();
  }
  PartialFile f(path, true);
  EXPECT_EQ(f.take_kept(), "row\n");
  f.discard();
  EXPECT_EQ(entries(dir.dir()), 0u);
}

}  // namespace
}  // namespace caption
