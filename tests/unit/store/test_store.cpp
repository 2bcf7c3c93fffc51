// Models by name: ollama stores and Hugging Face caches built in temporary folders, laid
// out as the real ones are (manifests + sha256-HEX blobs; snapshots whose files are
// relative symlinks into blobs/). Model files here are a GGUF magic and a few bytes: the
// store only reads the magic; the CLI test (scripts/test_stores.sh) runs a real model.

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <random>
#include <fstream>
#include <string>

#include "store/hf_cache.h"
#include "store/ollama_store.h"
#include "store/store.h"
#include "util/error.h"

namespace fs = std::filesystem;
using namespace swapmoe;
using namespace swapmoe::store;

namespace {

std::string make_temp_dir() {
  std::string tmpl = std::string(SWAPMOE_BUILD_DIR) + "/store-test-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

void write_file(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

const std::string kGguf = std::string("GGUF\x03\x00\x00\x00", 8) + "tiny";

std::string hex64(char c) { return std::string(64, c); }

// Environment variables set for one test and restored afterwards.
class EnvGuard {
 public:
  void set(const char* k, const std::string& v) {
    save(k);
    ::setenv(k, v.c_str(), 1);
  }
  void unset(const char* k) {
    save(k);
    ::unsetenv(k);
  }
  ~EnvGuard() {
    for (auto& [k, v] : saved_) {
      if (v) ::setenv(k.c_str(), v->c_str(), 1);
      else ::unsetenv(k.c_str());
    }
  }

 private:
  void save(const char* k) {
    for (auto& s : saved_)
      if (s.first == k) return;
    const char* v = std::getenv(k);
    saved_.emplace_back(k, v ? std::optional<std::string>(v) : std::nullopt);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// An ollama store under root: add(name path, layers) writes a manifest.
struct OllamaStore {
  std::string root;
  explicit OllamaStore(std::string r) : root(std::move(r)) { fs::create_directories(root + "/blobs"); }

  std::string blob(char c, const std::string& content) {
    write_file(root + "/blobs/sha256-" + hex64(c), content);
    return "sha256:" + hex64(c);
  }
  void manifest(const std::string& rel, const std::string& json) { write_file(root + "/manifests/" + rel, json); }
  // A manifest with a model layer (digest of blob c) and optionally a params layer.
  void add(const std::string& rel, char model_blob, const std::string& params_digest = "") {
    std::string layers = R"({"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" + hex64(model_blob) +
                         R"(","size":12})";
    layers += R"(,{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:)" + hex64('e') + R"(","size":3})";
    if (!params_digest.empty())
      layers += R"(,{"mediaType":"application/vnd.ollama.image.params","digest":")" + params_digest + R"(","size":3})";
    manifest(rel, R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
                  R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:)" +
                      hex64('f') + R"(","size":2},"layers":[)" + layers + "]}");
  }
};

// A Hugging Face cache: files(repo, rev, {relative path -> content}) writes blobs and
// snapshot symlinks the way huggingface_hub does (../../blobs/HASH).
struct HfCache {
  std::string hub;
  int next_blob = 0;
  explicit HfCache(std::string h) : hub(std::move(h)) { fs::create_directories(hub); }

  std::string repo_dir(const std::string& repo) {
    std::string f = repo;
    f.replace(f.find('/'), 1, "--");
    return hub + "/models--" + f;
  }
  void files(const std::string& repo, const std::string& rev, const std::vector<std::pair<std::string, std::string>>& fl,
             bool set_main = true) {
    const std::string dir = repo_dir(repo);
    for (const auto& [rel, content] : fl) {
      const std::string hash = "blob" + std::to_string(next_blob++);
      write_file(dir + "/blobs/" + hash, content);
      const fs::path link = fs::path(dir) / "snapshots" / rev / rel;
      fs::create_directories(link.parent_path());
      fs::path target = fs::relative(fs::path(dir) / "blobs" / hash, link.parent_path());
      fs::create_symlink(target, link);
    }
    if (set_main) write_file(dir + "/refs/main", rev);
  }
};

template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { dir = make_temp_dir(); }
  void TearDown() override { fs::remove_all(dir); }
  std::string dir;
};

}  // namespace

TEST(OllamaName, Forms) {
  OllamaName n = parse_ollama_name("qwen3");
  EXPECT_EQ(n.host, "registry.ollama.ai");
  EXPECT_EQ(n.ns, "library");
  EXPECT_EQ(n.model, "qwen3");
  EXPECT_EQ(n.tag, "latest");
  EXPECT_EQ(n.display(), "qwen3:latest");
  n = parse_ollama_name("deepseek-r1:671b");
  EXPECT_EQ(n.model, "deepseek-r1");
  EXPECT_EQ(n.tag, "671b");
  n = parse_ollama_name("someone/my-model:q4_K_M");
  EXPECT_EQ(n.ns, "someone");
  EXPECT_EQ(n.tag, "q4_K_M");
  EXPECT_EQ(n.display(), "someone/my-model:q4_K_M");
  n = parse_ollama_name("hf.co/unsloth/DeepSeek-R1-GGUF:UD-IQ1_S");
  EXPECT_EQ(n.host, "hf.co");
  EXPECT_EQ(n.ns, "unsloth");
  EXPECT_EQ(n.model, "DeepSeek-R1-GGUF");
  EXPECT_EQ(n.display(), "hf.co/unsloth/DeepSeek-R1-GGUF:UD-IQ1_S");
  n = parse_ollama_name("localhost:5000/team/m:v1.2");
  EXPECT_EQ(n.host, "localhost:5000");
  EXPECT_EQ(n.tag, "v1.2");
}

TEST(OllamaName, OddNamesAreRefused) {
  for (const char* bad : {"", "..", "../etc/passwd", "a/../b", "m:..", "m:a..b", "x/y/z/w", "m:", ":tag", "ns/",
                          "/etc/passwd", "m;rm -rf", "m\n", "na.me/m", "m/..:x", "-m", "m:t:u", "m\\x", "m%2f"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(parse_ollama_name(bad), Error);
  }
  EXPECT_NE(error_of([] { parse_ollama_name("a/../b"); }).find("namespace"), std::string::npos);
  EXPECT_NE(error_of([] { parse_ollama_name("m:a..b"); }).find(".."), std::string::npos);
}

TEST_F(StoreTest, OllamaEveryNameForm) {
  OllamaStore s(dir + "/ollama");
  s.blob('a', kGguf);
  s.blob('b', kGguf + "b");
  s.blob('c', kGguf + "cc");
  s.add("registry.ollama.ai/library/qwen3/latest", 'a');
  s.add("registry.ollama.ai/library/qwen3/30b", 'b');
  s.add("registry.ollama.ai/someone/mixtral/q8", 'c');
  s.add("example.com:8080/team/olmoe/v1", 'a');
  const std::string blobs = fs::canonical(s.root).string() + "/blobs/sha256-";

  StoreModel m = resolve_ollama(s.root, "qwen3");  // default tag
  EXPECT_EQ(m.name, "qwen3:latest");
  EXPECT_EQ(m.path, blobs + hex64('a'));
  EXPECT_EQ(m.source, "ollama");
  EXPECT_EQ(m.size, kGguf.size());
  EXPECT_EQ(m.digest, "sha256:" + hex64('a'));
  EXPECT_EQ(resolve_ollama(s.root, "qwen3:latest").path, blobs + hex64('a'));
  EXPECT_EQ(resolve_ollama(s.root, "qwen3:30b").path, blobs + hex64('b'));
  EXPECT_EQ(resolve_ollama(s.root, "library/qwen3:30b").path, blobs + hex64('b'));
  EXPECT_EQ(resolve_ollama(s.root, "registry.ollama.ai/library/qwen3:30b").path, blobs + hex64('b'));
  EXPECT_EQ(resolve_ollama(s.root, "someone/mixtral:q8").path, blobs + hex64('c'));
  EXPECT_EQ(resolve_ollama(s.root, "someone/mixtral:q8").name, "someone/mixtral:q8");
  EXPECT_EQ(resolve_ollama(s.root, "example.com:8080/team/olmoe:v1").path, blobs + hex64('a'));
  // ollama compares names ignoring case.
  EXPECT_EQ(resolve_ollama(s.root, "Qwen3:30B").path, blobs + hex64('b'));
  // Not found: where it looked, and the closest names.
  const std::string e = error_of([&] { resolve_ollama(s.root, "qwen2:30b"); });
  EXPECT_NE(e.find("manifests/registry.ollama.ai/library/qwen2/30b"), std::string::npos) << e;
  EXPECT_NE(e.find("closest: qwen3:30b"), std::string::npos) << e;
  const std::string e2 = error_of([&] { resolve_ollama(s.root, "someone/mixtrl:q8"); });
  EXPECT_NE(e2.find("closest: someone/mixtral:q8"), std::string::npos) << e2;

  std::vector<std::string> problems;
  const std::vector<StoreModel> all = list_ollama(s.root, &problems);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(all[0].name, "example.com:8080/team/olmoe:v1");
  EXPECT_EQ(all[1].name, "qwen3:30b");
  EXPECT_EQ(all[2].name, "qwen3:latest");
  EXPECT_EQ(all[3].name, "someone/mixtral:q8");
}

TEST_F(StoreTest, OllamaParamsLayer) {
  OllamaStore s(dir + "/ollama");
  s.blob('a', kGguf);
  const std::string p = s.blob('d', R"({"stop":["<|User|>","<|end|>"],"temperature":0.6,"top_k":20,"num_ctx":8192,"mirostat":0})");
  s.add("registry.ollama.ai/library/deepseek-r1/671b", 'a', p);
  const StoreModel m = resolve_ollama(s.root, "deepseek-r1:671b");
  ASSERT_EQ(m.params.stop.size(), 2u);
  EXPECT_EQ(m.params.stop[0], "<|User|>");
  EXPECT_DOUBLE_EQ(*m.params.temperature, 0.6);
  EXPECT_EQ(*m.params.top_k, 20);
  EXPECT_EQ(*m.params.num_ctx, 8192);
  EXPECT_FALSE(m.params.top_p.has_value());
  EXPECT_THROW(parse_ollama_params("[1,2]", "p"), Error);
  EXPECT_THROW(parse_ollama_params(R"({"stop": 3})", "p"), Error);
  EXPECT_THROW(parse_ollama_params(R"({"temperature": "hot"})", "p"), Error);
  EXPECT_EQ(parse_ollama_params(R"({"stop": "x"})", "p").stop, std::vector<std::string>{"x"});
}

TEST_F(StoreTest, OllamaBrokenStores) {
  OllamaStore s(dir + "/ollama");
  s.blob('a', kGguf);
  s.blob('b', "PK\x03\x04 not a gguf");
  // Missing blob.
  s.add("registry.ollama.ai/library/gone/latest", 'c');
  EXPECT_NE(error_of([&] { resolve_ollama(s.root, "gone"); }).find("model blob of gone:latest is missing"),
            std::string::npos);
  // No model layer.
  s.manifest("registry.ollama.ai/library/nomodel/latest",
             R"({"layers":[{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:)" + hex64('a') + R"("}]})");
  EXPECT_NE(error_of([&] { resolve_ollama(s.root, "nomodel"); }).find("has no model layer"), std::string::npos);
  // Malformed JSON, a non-object, and hostile nesting.
  s.manifest("registry.ollama.ai/library/badjson/latest", R"({"layers": [ {"mediaType": )");
  EXPECT_NE(error_of([&] { resolve_ollama(s.root, "badjson"); }).find("not valid JSON"), std::string::npos);
  s.manifest("registry.ollama.ai/library/array/latest", "[]");
  EXPECT_NE(error_of([&] { resolve_ollama(s.root, "array"); }).find("no \"layers\" list"), std::string::npos);
  s.manifest("registry.ollama.ai/library/deep/latest", std::string(100000, '['));
  EXPECT_NE(error_of([&] { resolve_ollama(s.root, "deep"); }).find("nested too deeply"), std::string::npos);
  // A blob that is not GGUF.
  s.add("registry.ollama.ai/library/zip/latest", 'b');
  EXPECT_NE(error_of([&] { resolve_ollama(s.root, "zip"); }).find("is not a GGUF file"), std::string::npos);
  // A digest that tries to name a path.
  s.manifest("registry.ollama.ai/library/evil/latest",
             R"({"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:../../../etc/passwd"}]})");
  EXPECT_NE(error_of([&] { resolve_ollama(s.root, "evil"); }).find("is not sha256:<64 hex digits>"), std::string::npos);
  // Two model layers.
  s.manifest("registry.ollama.ai/library/two/latest",
             R"({"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" + hex64('a') +
                 R"("},{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" + hex64('a') + R"("}]})");
  EXPECT_NE(error_of([&] { resolve_ollama(s.root, "two"); }).find("2 model layers"), std::string::npos);
  // The store itself missing.
  EXPECT_NE(error_of([&] { resolve_ollama(dir + "/nowhere", "qwen3"); }).find("does not exist"), std::string::npos);
  // list_ollama keeps the good ones and reports the rest.
  s.add("registry.ollama.ai/library/good/latest", 'a');
  std::vector<std::string> problems;
  const auto all = list_ollama(s.root, &problems);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "good:latest");
  EXPECT_EQ(problems.size(), 8u);
}

TEST_F(StoreTest, OllamaNothingOutsideTheStoreIsOpened) {
  OllamaStore s(dir + "/ollama");
  write_file(dir + "/outside/secret.gguf", kGguf);
  write_file(dir + "/outside/manifest",
             R"({"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" + hex64('a') + R"("}]})");
  s.blob('a', kGguf);
  // A manifest that is a symlink to a file outside the store.
  fs::create_directories(s.root + "/manifests/registry.ollama.ai/library/linked");
  fs::create_symlink(dir + "/outside/manifest", s.root + "/manifests/registry.ollama.ai/library/linked/latest");
  std::string e = error_of([&] { resolve_ollama(s.root, "linked"); });
  EXPECT_NE(e.find("outside the store"), std::string::npos) << e;
  // A blob that is a symlink out of the store.
  fs::create_symlink(dir + "/outside/secret.gguf", s.root + "/blobs/sha256-" + hex64('9'));
  s.add("registry.ollama.ai/library/leak/latest", '9');
  e = error_of([&] { resolve_ollama(s.root, "leak"); });
  EXPECT_NE(e.find("outside the store"), std::string::npos) << e;
  // A directory level that is a symlink out of the store.
  fs::create_directories(dir + "/outside/ns/m");
  write_file(dir + "/outside/ns/m/latest", "{}");
  fs::create_symlink(dir + "/outside/ns", s.root + "/manifests/registry.ollama.ai/evilns");
  e = error_of([&] { resolve_ollama(s.root, "evilns/m"); });
  EXPECT_NE(e.find("outside the store"), std::string::npos) << e;
  // An absolute path that does not exist is not looked up in the store at all.
  e = error_of([] { resolve_model("/no/such/model"); });
  EXPECT_EQ(e, "(no error)");  // returned as a path; the GGUF reader reports it missing
  EXPECT_EQ(resolve_model("/no/such/model").source, "file");
}

TEST_F(StoreTest, EnvironmentPrecedence) {
  EnvGuard env;
  const std::string home = dir + "/home";
  fs::create_directories(home);
  env.set("HOME", home);
  env.unset("OLLAMA_MODELS");
  env.unset("HF_HUB_CACHE");
  env.unset("HF_HOME");
  // Nothing exists: the user's folder (or the service's when it exists on this machine).
  if (!fs::exists("/usr/share/ollama/.ollama/models")) {
    EXPECT_EQ(ollama_models_dir(), home + "/.ollama/models");
  }
  fs::create_directories(home + "/.ollama/models");
  EXPECT_EQ(ollama_models_dir(), home + "/.ollama/models");
  env.set("OLLAMA_MODELS", dir + "/elsewhere");
  EXPECT_EQ(ollama_models_dir(), dir + "/elsewhere");

  EXPECT_EQ(hf_hub_dir(), home + "/.cache/huggingface/hub");
  env.set("HF_HOME", dir + "/hfhome");
  EXPECT_EQ(hf_hub_dir(), dir + "/hfhome/hub");
  env.set("HF_HUB_CACHE", dir + "/hubcache");
  EXPECT_EQ(hf_hub_dir(), dir + "/hubcache");

  // resolve_model uses them: an ollama name in $OLLAMA_MODELS, hf: in $HF_HUB_CACHE.
  OllamaStore s(dir + "/elsewhere");
  s.blob('a', kGguf);
  s.add("registry.ollama.ai/library/tiny/latest", 'a');
  EXPECT_EQ(resolve_model("tiny").source, "ollama");
  HfCache c(dir + "/hubcache");
  c.files("o/r", hex64('1').substr(0, 40), {{"r-Q8_0.gguf", kGguf}});
  EXPECT_EQ(resolve_model("hf:o/r").source, "hf");
  HfCache c2(dir + "/hfhome/hub");
  c2.files("o/only-in-home", hex64('1').substr(0, 40), {{"x-Q8_0.gguf", kGguf}});
  EXPECT_THROW(resolve_model("hf:o/only-in-home"), Error);  // HF_HUB_CACHE wins over HF_HOME
  env.unset("HF_HUB_CACHE");
  EXPECT_EQ(resolve_model("hf:o/only-in-home").source, "hf");
  // An existing path wins over a store name.
  write_file(dir + "/tiny", kGguf);
  ASSERT_EQ(::chdir(dir.c_str()), 0);
  EXPECT_EQ(resolve_model("tiny").source, "file");
  ASSERT_EQ(::chdir(SWAPMOE_BUILD_DIR), 0);
  const std::vector<StoreModel> all = list_models();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "tiny:latest");
  EXPECT_EQ(all[1].name, "hf:o/only-in-home:Q8_0");
}

TEST(HfCacheNames, QuantTag) {
  EXPECT_EQ(quant_tag_of("Qwen3-30B-A3B-Q4_K_M.gguf"), "Q4_K_M");
  EXPECT_EQ(quant_tag_of("DeepSeek-R1-UD-IQ1_S-00001-of-00003.gguf"), "IQ1_S");
  EXPECT_EQ(quant_tag_of("model.q8_0.gguf"), "Q8_0");
  EXPECT_EQ(quant_tag_of("model.bin"), "");
}

TEST_F(StoreTest, HfQuantSelection) {
  HfCache c(dir + "/hub");
  const std::string rev = std::string(40, 'a');
  c.files("unsloth/DeepSeek-R1-GGUF", rev,
          {{"DeepSeek-R1-Q8_0.gguf", kGguf},
           {"DeepSeek-R1-Q4_K_M.gguf", kGguf},
           {"mmproj-DeepSeek-R1-Q4_K_M.gguf", kGguf},
           {"UD-IQ1_S/DeepSeek-R1-UD-IQ1_S-00001-of-00003.gguf", kGguf + "1"},
           {"UD-IQ1_S/DeepSeek-R1-UD-IQ1_S-00002-of-00003.gguf", kGguf + "22"},
           {"UD-IQ1_S/DeepSeek-R1-UD-IQ1_S-00003-of-00003.gguf", kGguf + "333"},
           {"README.md", "# hi"}});
  const std::string snap = c.repo_dir("unsloth/DeepSeek-R1-GGUF") + "/snapshots/" + rev + "/";
  // No quant: Q4_K_M first (llama.cpp's default), never the mmproj file.
  StoreModel m = resolve_hf(c.hub, "unsloth/DeepSeek-R1-GGUF");
  EXPECT_EQ(m.path, snap + "DeepSeek-R1-Q4_K_M.gguf");
  EXPECT_EQ(m.name, "hf:unsloth/DeepSeek-R1-GGUF");
  EXPECT_EQ(m.source, "hf");
  EXPECT_EQ(resolve_hf(c.hub, "unsloth/DeepSeek-R1-GGUF:q8_0").path, snap + "DeepSeek-R1-Q8_0.gguf");
  // Split: the first part, with every part listed and the sizes summed.
  m = resolve_hf(c.hub, "unsloth/DeepSeek-R1-GGUF:UD-IQ1_S");
  EXPECT_EQ(m.path, snap + "UD-IQ1_S/DeepSeek-R1-UD-IQ1_S-00001-of-00003.gguf");
  ASSERT_EQ(m.parts.size(), 3u);
  EXPECT_EQ(m.parts[2], snap + "UD-IQ1_S/DeepSeek-R1-UD-IQ1_S-00003-of-00003.gguf");
  EXPECT_EQ(m.size, 3 * kGguf.size() + 6);
  EXPECT_EQ(resolve_hf(c.hub, "unsloth/DeepSeek-R1-GGUF:iq1_s").path, m.path);
  // Repository names ignore case.
  EXPECT_EQ(resolve_hf(c.hub, "Unsloth/deepseek-r1-gguf:Q8_0").path, snap + "DeepSeek-R1-Q8_0.gguf");
  // Not present: where it looked, what there is.
  std::string e = error_of([&] { resolve_hf(c.hub, "unsloth/DeepSeek-R1-GGUF:Q2_K"); });
  EXPECT_NE(e.find("no GGUF file matching 'Q2_K'"), std::string::npos) << e;
  EXPECT_NE(e.find("DeepSeek-R1-Q8_0.gguf"), std::string::npos) << e;
  e = error_of([&] { resolve_hf(c.hub, "unsloth/DeepSeek-R2-GGUF"); });
  EXPECT_NE(e.find("models--unsloth--DeepSeek-R2-GGUF"), std::string::npos) << e;
  EXPECT_NE(e.find("closest: hf:unsloth/DeepSeek-R1-GGUF"), std::string::npos) << e;
  // Listing names every model file so that it resolves back to it.
  std::vector<std::string> problems;
  const auto all = list_hf(c.hub, &problems);
  ASSERT_EQ(all.size(), 3u) << (problems.empty() ? "" : problems[0]);
  for (const StoreModel& x : all) EXPECT_EQ(resolve_hf(c.hub, x.name.substr(3)).path, x.path) << x.name;
  EXPECT_EQ(all[0].name, "hf:unsloth/DeepSeek-R1-GGUF:Q4_K_M");
  EXPECT_EQ(all[2].name, "hf:unsloth/DeepSeek-R1-GGUF:IQ1_S");
  EXPECT_EQ(all[2].parts.size(), 3u);
}

TEST_F(StoreTest, HfFallbacksAndBrokenCaches) {
  HfCache c(dir + "/hub");
  // Without Q4_K_M or Q8_0: the first model file.
  c.files("o/plain", std::string(40, 'b'), {{"b-model-F16.gguf", kGguf}, {"a-model-BF16.gguf", kGguf}});
  EXPECT_NE(resolve_hf(c.hub, "o/plain").path.find("a-model-BF16.gguf"), std::string::npos);
  // No refs/main: the newest snapshot.
  c.files("o/norefs", std::string(40, '1'), {{"m-Q8_0.gguf", kGguf}}, false);
  c.files("o/norefs", std::string(40, '2'), {{"m-Q8_0.gguf", kGguf + "new"}}, false);
  const std::string d = c.repo_dir("o/norefs") + "/snapshots/";
  fs::last_write_time(d + std::string(40, '1'), fs::file_time_type::clock::now() - std::chrono::hours(2));
  EXPECT_EQ(resolve_hf(c.hub, "o/norefs").path, d + std::string(40, '2') + "/m-Q8_0.gguf");
  // refs/main wins over a newer snapshot.
  write_file(c.repo_dir("o/norefs") + "/refs/main", std::string(40, '1') + "\n");
  EXPECT_EQ(resolve_hf(c.hub, "o/norefs").path, d + std::string(40, '1') + "/m-Q8_0.gguf");
  // A missing split part.
  c.files("o/split", std::string(40, 'c'), {{"s-Q4_K_M-00001-of-00002.gguf", kGguf}});
  std::string e = error_of([&] { resolve_hf(c.hub, "o/split"); });
  EXPECT_NE(e.find("part 2 of 2 is missing"), std::string::npos) << e;
  // A snapshot file that is not GGUF (an interrupted download).
  c.files("o/html", std::string(40, 'd'), {{"x-Q4_K_M.gguf", "<html>"}});
  EXPECT_NE(error_of([&] { resolve_hf(c.hub, "o/html"); }).find("is not a GGUF file"), std::string::npos);
  // A snapshot symlink that leaves the cache.
  write_file(dir + "/outside.gguf", kGguf);
  const std::string ldir = c.repo_dir("o/leak") + "/snapshots/" + std::string(40, 'e');
  fs::create_directories(ldir);
  fs::create_symlink(dir + "/outside.gguf", ldir + "/leak-Q4_K_M.gguf");
  e = error_of([&] { resolve_hf(c.hub, "o/leak"); });
  EXPECT_NE(e.find("outside the store"), std::string::npos) << e;
  // Odd references.
  for (const char* bad : {"../x", "o/../x", "o", "o/r/x", "/etc/passwd", "o/r:..", "o/r:a/b", "o//r", ".o/r", "o/r:"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(resolve_hf(c.hub, bad), Error);
  }
  EXPECT_NE(error_of([&] { resolve_hf(dir + "/nohub", "o/r"); }).find("does not exist"), std::string::npos);
}

TEST(ClosestNames, EditDistance) {
  const std::vector<std::string> c = {"qwen3:30b", "deepseek-r1:671b", "deepseek-r1:8b", "olmoe:latest"};
  EXPECT_EQ(closest_names("deepseek-r1:617b", c, 1), std::vector<std::string>{"deepseek-r1:671b"});
  EXPECT_EQ(closest_names("QWEN3:30B", c, 1), std::vector<std::string>{"qwen3:30b"});
  EXPECT_EQ(closest_names("x", {}, 3).size(), 0u);
  EXPECT_EQ(closest_names("deepseek", c, 2).size(), 2u);
}

// Random names: parsing never crashes, and a name it accepts has parts that are single,
// harmless path components (what makes the manifest path stay inside manifests/).
TEST(OllamaName, RandomNamesStayInsideTheStore) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab9_-.:/\\%~ \n\x01\xff";
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int n = static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) s += alphabet[rng() % alphabet.size()];
    try {
      const OllamaName nm = parse_ollama_name(s);
      ++accepted;
      for (const std::string& part : {nm.host, nm.ns, nm.model, nm.tag}) {
        EXPECT_FALSE(part.empty()) << s;
        EXPECT_EQ(part.find('/'), std::string::npos) << s;
        EXPECT_EQ(part.find(".."), std::string::npos) << s;
        EXPECT_NE(part[0], '.') << s;
        for (char c : part) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':') << s;
      }
    } catch (const Error&) {
    }
  }
  EXPECT_GT(accepted, 100);  // the generator does produce valid names
}
