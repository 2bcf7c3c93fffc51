#include "store/hf_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <set>

#include "store/confine.h"
#include "store/store_util.h"
#include "util/error.h"

namespace swapmoe::store {

namespace {

namespace fs = std::filesystem;

bool base_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// owner/repo: letters, digits and '_', with '/', '.' and '-' only between two of them and
// exactly one '/'. This keeps `..`, leading dots and absolute paths out by construction.
void check_repo_id(const std::string& repo, const std::string& ref) {
  bool ok = !repo.empty() && repo.size() <= 256;
  int slashes = 0;
  bool after_special = true;
  for (char c : repo) {
    if (!ok) break;
    if (base_char(c)) {
      after_special = false;
    } else if (c == '/' || c == '.' || c == '-') {
      if (after_special) ok = false;
      slashes += c == '/';
      after_special = true;
    } else {
      ok = false;
    }
  }
  if (!ok || after_special || slashes != 1)
    fail("hf:", printable_string(ref), ": expected hf:OWNER/REPO[:QUANT] with letters, digits, '_', '-' and '.' ",
         "('-', '.' and the one '/' between other characters)");
}

void check_quant(const std::string& q, const std::string& ref) {
  bool ok = !q.empty() && q.size() <= 64 && q.find("..") == std::string::npos;
  for (char c : q) ok = ok && (base_char(c) || c == '-' || c == '.');
  if (!ok) fail("hf:", printable_string(ref), ": the quant tag must be letters, digits, '_', '-' and '.'");
}

struct SplitInfo {
  std::string prefix;  // path without ".gguf" and the split suffix
  int index = 1, count = 1;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "dir/Name-00001-of-00003.gguf" -> {"dir/Name", 1, 3}
SplitInfo split_info(const std::string& path) {
  SplitInfo s;
  s.prefix = path.substr(0, path.size() - 5);
  const std::string& p = s.prefix;
  // -NNNNN-of-NNNNN is 15 characters.
  if (p.size() > 15 && p[p.size() - 15] == '-' && p.compare(p.size() - 9, 4, "-of-") == 0) {
    const std::string a = p.substr(p.size() - 14, 5), b = p.substr(p.size() - 5);
    const auto digits = [](const std::string& x) {
      return std::all_of(x.begin(), x.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    };
    if (digits(a) && digits(b) && std::stoi(b) > 0) {
      s.index = std::stoi(a);
      s.count = std::stoi(b);
      s.prefix.resize(p.size() - 15);
    }
  }
  return s;
}

bool is_model_file(const std::string& path) {
  if (!ends_with(path, ".gguf")) return false;
  const std::string name = path.substr(path.find_last_of('/') + 1);
  for (const char* side : {"mmproj", "imatrix", "mtp-", "eagle3-"})
    if (name.find(side) != std::string::npos) return false;
  return true;
}

bool contains_tag(const std::string& path, const std::string& tag) {
  const std::string p = to_upper(path), t = to_upper(tag);
  for (size_t at = p.find(t); at != std::string::npos; at = p.find(t, at + 1)) {
    const size_t end = at + t.size();
    if (end < p.size() && (p[end] == '.' || p[end] == '-')) return true;
  }
  return false;
}

// llama.cpp's choice among `files` (sorted relative paths); "" when none matches.
std::string pick_file(const std::vector<std::string>& files, const std::string& tag) {
  auto first_part = [](const std::string& f) {
    const SplitInfo s = split_info(f);
    return s.count <= 1 || s.index == 1;
  };
  const std::vector<std::string> tags = tag.empty() ? std::vector<std::string>{"Q4_K_M", "Q8_0"} : std::vector<std::string>{tag};
  for (const std::string& t : tags)
    for (const std::string& f : files)
      if (is_model_file(f) && first_part(f) && contains_tag(f, t)) return f;
  if (tag.empty())
    for (const std::string& f : files)
      if (is_model_file(f) && first_part(f)) return f;
  return "";
}

struct Snapshot {
  std::string repo;      // owner/repo
  std::string repo_dir;  // HUB/models--owner--repo
  std::string dir;       // .../snapshots/REV
  std::vector<std::string> files;  // .gguf paths relative to dir, sorted
};

std::string repo_folder(const std::string& repo) {
  std::string f = "models--" + repo;
  const size_t slash = f.find('/');
  return f.replace(slash, 1, "--");
}

// The snapshot refs/main names, else the newest one; "" when there is none.
std::string pick_revision(const std::string& repo_dir) {
  const std::string snaps = repo_dir + "/snapshots";
  try {
    std::string rev = read_small_file(repo_dir + "/refs/main", 4096, "refs/main");
    while (!rev.empty() && std::isspace(static_cast<unsigned char>(rev.back()))) rev.pop_back();
    const bool hex = !rev.empty() && std::all_of(rev.begin(), rev.end(), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c));
    });
    struct stat st {};
    if (hex && ::stat((snaps + "/" + rev).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return rev;
  } catch (const Error&) {
    // No refs/main (or an unreadable one): the newest snapshot below.
  }
  std::string best;
  int64_t best_time = INT64_MIN;
  for (const std::string& rev : list_dir(snaps)) {
    struct stat st {};
    if (::stat((snaps + "/" + rev).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    const int64_t t = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (t > best_time) {
      best_time = t;
      best = rev;
    }
  }
  return best;
}

std::vector<std::string> gguf_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  // Directory symlinks are not followed (the iterator's default): snapshot folders are real.
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it.depth() > 8) {
      it.disable_recursion_pending();
      continue;
    }
    const std::string rel = it->path().lexically_relative(dir).generic_string();
    if (ends_with(rel, ".gguf") && !it->is_directory()) out.push_back(rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> cached_repos(const std::string& hub) {
  std::vector<std::string> out;
  for (const std::string& d : list_dir(hub)) {
    if (d.rfind("models--", 0) != 0) continue;
    std::string repo = d.substr(8);
    const size_t sep = repo.find("--");
    if (sep == std::string::npos) continue;
    repo.replace(sep, 2, "/");
    out.push_back(repo);
  }
  return out;
}

Snapshot open_snapshot(const std::string& hub_real, const std::string& repo) {
  Snapshot s;
  std::string folder = repo_folder(repo);
  struct stat st {};
  if (::stat((hub_real + "/" + folder).c_str(), &st) != 0) {
    // Repository ids are case-insensitive on the Hub.
    std::string found;
    for (const std::string& r : cached_repos(hub_real))
      if (iequals(r, repo)) found = r;
    if (found.empty()) {
      const std::vector<std::string> near = closest_names(repo, cached_repos(hub_real));
      fail("hf:", repo, " is not in the Hugging Face cache ", hub_real, " (looked for ", hub_real, "/", folder,
           "; nothing is downloaded)",
           near.empty() ? std::string("; the cache has no models") : cat("; closest: hf:", join(near, ", hf:")));
    }
    s.repo = found;
    folder = repo_folder(found);
  } else {
    s.repo = repo;
  }
  s.repo_dir = confined_path(hub_real, hub_real + "/" + folder, cat("hf:", repo));
  const std::string rev = pick_revision(s.repo_dir);
  if (rev.empty()) fail("hf:", s.repo, ": no snapshot in ", s.repo_dir, "/snapshots");
  s.dir = s.repo_dir + "/snapshots/" + rev;
  s.files = gguf_files(s.dir);
  return s;
}

// Fills m from the chosen file `rel` of snapshot s: every part checked to exist inside the
// cache and to be GGUF.
void fill_model(const std::string& hub_real, const Snapshot& s, const std::string& rel, StoreModel& m) {
  const SplitInfo si = split_info(rel);
  std::vector<std::string> rels;
  if (si.count <= 1) {
    rels.push_back(rel);
  } else {
    const std::set<std::string> have(s.files.begin(), s.files.end());
    for (int i = 1; i <= si.count; ++i) {
      char suffix[32];
      std::snprintf(suffix, sizeof suffix, "-%05d-of-%05d.gguf", i, si.count);
      const std::string part = si.prefix + suffix;
      if (!have.count(part))
        fail(m.name, ": part ", i, " of ", si.count, " is missing from the cache (", s.dir, "/", part, ")");
      rels.push_back(part);
    }
  }
  m.source = "hf";
  m.parts.clear();
  m.size = 0;
  for (const std::string& r : rels) {
    const std::string p = s.dir + "/" + r;
    const std::string real = confined_path(hub_real, p, cat(m.name, ": ", r));
    if (!has_gguf_magic(real)) fail(m.name, ": ", p, " is not a GGUF file (an incomplete download?)");
    m.size += file_size_or_zero(real);
    // The snapshot path, not the blob it points to: the parts of a split model are found
    // beside the first one by name.
    m.parts.push_back(p);
  }
  m.path = m.parts.front();
}

std::string hub_or_fail(const std::string& hub) {
  const std::string real = real_path_or_empty(hub);
  if (real.empty())
    fail("the Hugging Face cache ", hub, " does not exist (set HF_HUB_CACHE or HF_HOME; nothing is downloaded)");
  return real;
}

}  // namespace

std::string quant_tag_of(const std::string& filename) {
  if (!ends_with(filename, ".gguf")) return "";
  const std::string p = split_info(filename).prefix;
  size_t i = p.size();
  while (i > 0 && base_char(p[i - 1])) --i;
  if (i == p.size() || i == 0 || (p[i - 1] != '-' && p[i - 1] != '.')) return "";
  return to_upper(p.substr(i));
}

StoreModel resolve_hf(const std::string& hub, const std::string& ref) {
  const size_t colon = ref.find(':');
  const std::string repo = ref.substr(0, colon);
  const std::string tag = colon == std::string::npos ? "" : ref.substr(colon + 1);
  check_repo_id(repo, ref);
  if (colon != std::string::npos) check_quant(tag, ref);
  const std::string hub_real = hub_or_fail(hub);
  const Snapshot s = open_snapshot(hub_real, repo);
  const std::string rel = pick_file(s.files, tag);
  if (rel.empty()) {
    std::vector<std::string> tags;
    for (const std::string& f : s.files)
      if (is_model_file(f)) {
        const SplitInfo si = split_info(f);
        if (si.count <= 1 || si.index == 1) tags.push_back(f);
      }
    fail("hf:", s.repo, ": no GGUF file ", tag.empty() ? std::string() : cat("matching '", tag, "' "), "in ", s.dir,
         tags.empty() ? std::string(" (it has no .gguf files)") : cat("; it has: ", join(tags, ", ")));
  }
  StoreModel m;
  m.name = "hf:" + s.repo + (tag.empty() ? "" : ":" + tag);
  fill_model(hub_real, s, rel, m);
  return m;
}

std::vector<StoreModel> list_hf(const std::string& hub, std::vector<std::string>* problems) {
  std::vector<StoreModel> out;
  const std::string hub_real = real_path_or_empty(hub);
  if (hub_real.empty()) return out;
  for (const std::string& repo : cached_repos(hub_real)) {
    try {
      check_repo_id(repo, repo);
      const Snapshot s = open_snapshot(hub_real, repo);
      for (const std::string& f : s.files) {
        const SplitInfo si = split_info(f);
        if (!is_model_file(f) || (si.count > 1 && si.index != 1)) continue;
        // The shortest tag (the last '-'-separated words of the name) that picks this file.
        const std::string stem = si.prefix.substr(si.prefix.find_last_of('/') + 1);
        std::string tag;
        for (size_t at = stem.size(); at != std::string::npos && at > 0;) {
          at = stem.find_last_of('-', at - 1);
          const std::string t = at == std::string::npos ? stem : stem.substr(at + 1);
          bool ok = !t.empty() && t.find("..") == std::string::npos;
          for (char c : t) ok = ok && (base_char(c) || c == '-' || c == '.');
          if (ok && pick_file(s.files, t) == f) {
            tag = t;
            break;
          }
        }
        try {
          if (tag.empty()) fail("hf:", s.repo, ": ", f, " cannot be named by a quant tag (another file matches first)");
          StoreModel m;
          m.name = "hf:" + s.repo + ":" + tag;
          fill_model(hub_real, s, f, m);
          out.push_back(std::move(m));
        } catch (const Error& e) {
          if (problems) problems->push_back(e.what());
        }
      }
    } catch (const Error& e) {
      if (problems) problems->push_back(e.what());
    }
  }
  return out;
}

}  // namespace swapmoe::store
