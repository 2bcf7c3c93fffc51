#pragma once
// Output files that appear whole or not at all (issue 15, item 11). `quantize` and
// `swapmoe-forge` used to write "OUT.tmp" and rename it: a kill left up to 510 MB behind, a
// pre-existing OUT.tmp symlink was followed (overwriting an unrelated file), two runs to
// one OUT interleaved into a corrupt model, and `quantize a.gguf ./a.gguf` destroyed its
// input. AtomicOutput is one output file; a tool writing several (split GGUF) holds one
// per file and commits each.
//
//   - The temporary file has a unique name in OUT's folder (".NAME.XXXXXX.tmp", created
//     with O_CREAT|O_EXCL, so an existing file or symlink there is never opened).
//   - It is removed on error (destructor without commit()) and on SIGINT/SIGTERM/SIGHUP
//     (a handler installed with the first AtomicOutput unlinks every live temporary file,
//     then lets the signal end the process as it would have).
//   - commit() fsyncs the file, renames it over OUT and fsyncs the folder, so a crash
//     leaves the old OUT or the new one. Two writers to one OUT each rename a complete file;
//     the last rename wins.
//   - refuse_same_file() refuses an OUT that is, by device and inode, one of the inputs
//     (also through another path, a symlink or a hard link).

#include <string>
#include <vector>

namespace swapmoe {

class AtomicOutput {
 public:
  // Creates the temporary file next to `path`. Throws Error naming the folder on failure.
  explicit AtomicOutput(const std::string& path);
  // Not committed: the temporary file is closed and removed.
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

  // fsync, close, rename over path(), fsync the folder. Throws Error (and removes the
  // temporary file) on failure. At most once.
  void commit();

 private:
  void abandon() noexcept;

  std::string path_, temp_;
  int fd_ = -1;
  int slot_ = -1;  // in the signal handler's table of live temporary files
};

// Throws Error when `out` exists and is the same file (st_dev, st_ino) as one of `inputs`.
// `what` names the inputs in the message ("the input model").
void refuse_same_file(const std::string& out, const std::vector<std::string>& inputs);

}  // namespace swapmoe
