#include "model/safetensors.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "runtime/tensor.h"
#include "tests/io_test_util.h"
#include "tests/test_util.h"

namespace caption {
namespace {

using test::float_bits;
using test::ScratchDir;
using test::throws_input_error;

// A safetensors file from a header text and a data buffer; header length computed.
std::string make_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

TEST(Safetensors, HalfToFloatSpecialValues) {
  EXPECT_EQ(half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_to_float(0xc000), -2.0f);
  EXPECT_EQ(half_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(half_to_float(0x0400), std::ldexp(1.0f, -14));           // smallest normal
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));           // smallest subnormal
  EXPECT_EQ(half_to_float(0x03ff), std::ldexp(1023.0f, -24));        // largest subnormal
  EXPECT_EQ(half_to_float(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(float_bits(half_to_float(0x8000)), 0x80000000u);               // -0
  EXPECT_EQ(half_to_float(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(half_to_float(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(half_to_float(0x7e00)));
  EXPECT_TRUE(std::isnan(half_to_float(0x7c01)));  // signalling pattern stays a nan
}

TEST(Safetensors, BFloat16ToFloat) {
  EXPECT_EQ(bfloat16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(bfloat16_to_float(0xc049), -3.140625f);
  EXPECT_EQ(bfloat16_to_float(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bfloat16_to_float(0x0001), std::ldexp(1.0f, -133));  // float32 subnormal
  EXPECT_TRUE(std::isnan(bfloat16_to_float(0x7fc0)));
}

// Narrowing: every bfloat16 survives a round trip; between two neighbours the nearer wins and a
// tie goes to the even one; overflow rounds to inf; nan stays nan.
TEST(Safetensors, FloatToBFloat16RoundsToNearestEven) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bfloat16_to_float(uint16_t(b));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bfloat16_to_float(float_to_bfloat16(f)))) << b;
      continue;
    }
    ASSERT_EQ(float_to_bfloat16(f), b);
  }
  const float one = 1.0f, ulp = std::ldexp(1.0f, -7);                          // bfloat16 ulp at 1
  EXPECT_EQ(float_to_bfloat16(one + ulp / 2), 0x3f80);                         // tie: even (1.0)
  EXPECT_EQ(float_to_bfloat16(one + 3 * ulp / 2), 0x3f82);                     // tie: even (1 + 2ulp)
  EXPECT_EQ(float_to_bfloat16(std::nextafter(one + ulp / 2, 2.f)), 0x3f81);    // past the tie: up
  EXPECT_EQ(float_to_bfloat16(-(one + ulp / 2)), 0xbf80);
  EXPECT_EQ(float_to_bfloat16(std::numeric_limits<float>::max()), 0x7f80);     // rounds to inf
  EXPECT_EQ(float_to_bfloat16(std::ldexp(1.0f, -140)), 0x0000);                // below half the smallest: 0
}

TEST(Safetensors, FloatToHalfRoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = half_to_float(uint16_t(h));
    uint16_t back = float_to_half(f);
    if (std::isnan(f))
      EXPECT_TRUE(std::isnan(half_to_float(back))) << std::hex << h;
    else
      ASSERT_EQ(back, h) << std::hex << h;
  }
}

TEST(Safetensors, FloatToHalfRoundsToNearestEven) {
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even (down)
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(float_to_half(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // tie between 65504 and 65536 -> inf
  EXPECT_EQ(float_to_half(-1e10f), 0xfc00);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);      // half the smallest subnormal: tie -> 0
  EXPECT_EQ(float_to_half(3 * std::ldexp(1.0f, -25)), 0x0002);  // 1.5 ulp: tie -> even
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25) * 1.0001f), 0x0001);
  EXPECT_EQ(float_to_half(-std::ldexp(1.0f, -30)), 0x8000);  // underflow keeps the sign
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7c00);
  uint16_t nan = float_to_half(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x3ff, 0);
}

// Random floats across the whole half range: the result must be at least as close as both
// neighbours, and on an exact tie have an even mantissa; from 65520 on it is inf.
TEST(Safetensors, FloatToHalfIsNearest) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  std::uniform_int_distribution<int> expo(-26, 15);
  for (int i = 0; i < 200000; ++i) {
    float f = std::ldexp(mant(rng), expo(rng)) * (i % 2 ? -1.f : 1.f);
    uint16_t h = float_to_half(f);
    if (std::fabs(f) >= 65520.f) {  // past the midpoint of 65504 and 2^16: overflows
      ASSERT_EQ(h & 0x7fff, 0x7c00) << f;
      continue;
    }
    double err = std::fabs(double(half_to_float(h)) - f);
    for (int step : {-1, 1}) {
      uint16_t mag = h & 0x7fff;
      if ((step < 0 && mag == 0) || (step > 0 && mag >= 0x7bff)) continue;
      double nerr = std::fabs(double(half_to_float(uint16_t(h + step))) - f);
      ASSERT_LE(err, nerr) << f;
      if (err == nerr) ASSERT_EQ(h & 1, 0) << f;
    }
  }
}

TEST(Safetensors, RoundTripKeepsOrderShapesAndMetadata) {
  ScratchDir dir;
  Tensor a{{2, 3}, {1, 2, 3, 4, 5, 6}}, scalar{{}, {-7.5f}}, empty{{0, 4}, {}}, z{{3}, {1e-40f, -0.f, 3e38f}};
  const std::string path = dir.path("t.safetensors");
  write_safetensors(path, {{"zeta", &a}, {"alpha", &scalar}, {"empty", &empty}, {"b/c.d", &z}},
                    {{"format", "pt"}, {"quote", "a \"b\""}});
  SafetensorsFile f = read_safetensors(path);
  EXPECT_EQ(f.names, (std::vector<std::string>{"zeta", "alpha", "empty", "b/c.d"}));
  EXPECT_EQ(f.tensors.at("zeta").shape, a.shape);
  EXPECT_EQ(f.tensors.at("zeta").data, a.data);
  EXPECT_EQ(f.tensors.at("alpha").shape, std::vector<int64_t>{});
  EXPECT_EQ(f.tensors.at("alpha").data, scalar.data);
  EXPECT_EQ(f.tensors.at("empty").shape, empty.shape);
  EXPECT_TRUE(f.tensors.at("empty").data.empty());
  EXPECT_EQ(float_bits(f.tensors.at("b/c.d").data[1]), 0x80000000u);
  EXPECT_EQ(f.tensors.at("b/c.d").data, z.data);
  EXPECT_EQ(f.metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"quote", "a \"b\""}}));

  // Layout: header padded with spaces to 8 bytes, packed F32 data after it.
  const std::string bytes = test::read_bytes(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 4 * (6 + 1 + 0 + 3));
  EXPECT_NE(bytes.substr(8, n).find("\"dtype\":\"F32\""), std::string::npos);
  EXPECT_EQ(std::filesystem::directory_iterator(dir.dir())->path().filename(), "t.safetensors");  // no temp left
}

TEST(Safetensors, WriteRejectsBadInput) {
  ScratchDir dir;
  const std::string path = dir.path("w.safetensors");
  Tensor a{{2}, {1, 2}}, bad{{3}, {1, 2}}, neg{{-1}, {}};
  EXPECT_TRUE(throws_input_error([&] { write_safetensors(path, {{"x", &a}, {"x", &a}}); }, {"w.safetensors", "'x'"}));
  EXPECT_TRUE(throws_input_error([&] { write_safetensors(path, {{"bad", &bad}}); }, {"w.safetensors", "'bad'"}));
  EXPECT_TRUE(throws_input_error([&] { write_safetensors(path, {{"neg", &neg}}); }, {"'neg'", "negative"}));
  EXPECT_TRUE(throws_input_error([&] { write_safetensors(path, {{"__metadata__", &a}}); }, {"__metadata__"}));
  EXPECT_FALSE(std::filesystem::exists(path));
}

// Written by hand in the layout of the `safetensors` package (tests/golden/make_safetensors_fixture.py).
TEST(Safetensors, ReadsGoldenMixedDtypes) {
  SafetensorsFile f = read_safetensors(std::string(CAPTION_TEST_DATA) + "/golden/mixed_dtypes.safetensors");
  EXPECT_EQ(f.names, (std::vector<std::string>{"half", "bf16", "w", "step", "empty"}));
  EXPECT_EQ(f.metadata.at("format"), "pt");
  const Tensor& h = f.tensors.at("half");
  EXPECT_EQ(h.shape, (std::vector<int64_t>{2, 4}));
  std::vector<float> want_h = {1.0f, -2.5f, 65504.0f, std::ldexp(1.f, -14), std::ldexp(1.f, -24),
                               std::ldexp(1000.f, -24), -65504.0f, -0.0f};
  EXPECT_EQ(h.data, want_h);
  EXPECT_EQ(float_bits(h.data[7]), 0x80000000u);
  const Tensor& b = f.tensors.at("bf16");
  EXPECT_EQ(b.shape, std::vector<int64_t>{4});
  EXPECT_EQ(b.data, (std::vector<float>{1.0f, -3.140625f, std::ldexp(1.f, 100), std::ldexp(1.f, -130)}));
  EXPECT_EQ(f.tensors.at("w").data, (std::vector<float>{0.5f, -1.25f, 3e-3f, 1e30f}));
  EXPECT_EQ(f.tensors.at("step").shape, std::vector<int64_t>{});
  EXPECT_EQ(f.tensors.at("step").data, std::vector<float>{42.0f});
  EXPECT_EQ(f.tensors.at("empty").shape, (std::vector<int64_t>{0, 3}));
}

TEST(Safetensors, MalformedFilesNameFileAndTensor) {
  ScratchDir dir;
  const std::string path = dir.path("bad.safetensors");
  auto check = [&](const std::string& bytes, std::vector<std::string> words) {
    test::write_bytes(path, bytes);
    words.push_back("bad.safetensors");
    return throws_input_error([&] { read_safetensors(path); }, words);
  };
  const std::string f32x2(8, '\0');
  auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape, const std::string& offs) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offs + "}";
  };
  EXPECT_TRUE(check("", {"too short"}));
  EXPECT_TRUE(check(std::string(5, '\0'), {"too short"}));
  EXPECT_TRUE(check(make_file("{}", "").substr(0, 8), {"header length"}));  // N = 2 but no header
  {
    std::string big = make_file("{}", "");
    big[7] = '\x7f';  // N ~ 2^63
    EXPECT_TRUE(check(big, {"header length"}));
  }
  EXPECT_TRUE(check(make_file("{\"a\":", ""), {"JSON"}));
  EXPECT_TRUE(check(make_file("[1,2]", ""), {"not a JSON object"}));
  EXPECT_TRUE(check(make_file("{" + entry("x", "F32", "[2]", "[0,8]") + "," + entry("x", "F32", "[2]", "[0,8]") + "}", f32x2),
                    {"duplicate", "'x'"}));
  EXPECT_TRUE(check(make_file("{\"x\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", f32x2),
                    {"duplicate", "dtype"}));
  EXPECT_TRUE(check(make_file("{" + entry("x", "F32", "[2]", "[0,12]") + "}", f32x2), {"'x'", "data_offsets"}));
  EXPECT_TRUE(check(make_file("{" + entry("x", "F32", "[2]", "[8,0]") + "}", f32x2), {"'x'", "before begin"}));
  EXPECT_TRUE(check(make_file("{" + entry("x", "F32", "[2]", "[0,8]") + "," + entry("y", "F32", "[1]", "[4,8]") + "}",
                              f32x2),
                    {"overlap", "'x'", "'y'"}));
  EXPECT_TRUE(check(make_file("{" + entry("x", "F32", "[3]", "[0,8]") + "}", f32x2), {"'x'", "bytes"}));
  EXPECT_TRUE(check(make_file("{" + entry("x", "F16", "[2]", "[0,8]") + "}", f32x2), {"'x'", "bytes"}));
  EXPECT_TRUE(check(make_file("{" + entry("x", "F32", "[-2]", "[0,8]") + "}", f32x2), {"'x'", "negative"}));
  EXPECT_TRUE(check(make_file("{" + entry("x", "F32", "[2.5]", "[0,8]") + "}", f32x2), {"'x'", "integer"}));
  EXPECT_TRUE(check(make_file("{" + entry("x", "F32", "[4611686018427387904,4611686018427387904,4]", "[0,8]") + "}",
                              f32x2),
                    {"'x'"}));
  EXPECT_TRUE(check(make_file("{" + entry("ids", "I64", "[1]", "[0,8]") + "}", f32x2), {"'ids'", "I64"}));
  EXPECT_TRUE(check(make_file("{" + entry("x", "F32", "[2]", "[0]") + "}", f32x2), {"'x'", "data_offsets"}));
  EXPECT_TRUE(check(make_file("{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}", f32x2), {"'x'", "dtype"}));
  EXPECT_TRUE(check(make_file("{\"x\":[1]}", f32x2), {"'x'"}));
  // Finite values only: a NaN (F32) and an infinity (F16, where 65520 and up round to it).
  EXPECT_TRUE(check(make_file("{" + entry("x", "F32", "[2]", "[0,8]") + "}", std::string("\0\0\x80\x3f\0\0\xc0\x7f", 8)),
                    {"'x'", "non-finite value nan at index 1"}));
  EXPECT_TRUE(check(make_file("{" + entry("x", "F16", "[4]", "[0,8]") + "}", std::string("\0\x3c\0\x7c\0\x3c\0\x3c", 8)),
                    {"'x'", "non-finite value inf at index 1"}));
  EXPECT_TRUE(check(make_file("{\"__metadata__\":{\"k\":1}}", ""), {"__metadata__", "'k'"}));
  EXPECT_TRUE(check(make_file("{\"__metadata__\":[]}", ""), {"__metadata__"}));
  EXPECT_TRUE(throws_input_error([&] { read_safetensors(dir.path("missing.safetensors")); }, {"missing.safetensors"}));
  EXPECT_TRUE(throws_input_error([&] { read_safetensors(dir.path("")); }, {"directory"}));
}

// Truncations and random byte flips of a valid file: each read either succeeds or throws an
// InputError (run under ASan/valgrind to see out-of-bounds reads too).
TEST(Safetensors, CorruptedBytesNeverCrash) {
  const std::string good = test::read_bytes(std::string(CAPTION_TEST_DATA) + "/golden/mixed_dtypes.safetensors");
  ASSERT_GT(good.size(), 100u);
  ScratchDir dir;
  const std::string path = dir.path("c.safetensors");
  std::mt19937 rng(3);
  int errors = 0;
  for (size_t i = 0; i < good.size() + 1500; ++i) {
    std::string bytes = good;
    if (i < good.size()) {
      bytes.resize(i);
    } else {
      for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = char(rng());
    }
    test::write_bytes(path, bytes);
    try {
      read_safetensors(path);
    } catch (const InputError&) {
      ++errors;
    }
  }
  EXPECT_GE(errors, int(good.size()));  // every truncation at least
}

}  // namespace
}  // namespace caption
