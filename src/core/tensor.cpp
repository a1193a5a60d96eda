#include "switchyard/tensor.h"

#include "core/bfloat16.h"

#include <cstdlib>
#include <cstring>

namespace switchyard {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kInt32: case DType::kUInt32: return 4;
    case DType::kFloat16: case DType::kBFloat16: case DType::kInt16: case DType::kUInt16: return 2;
    case DType::kFloat64: case DType::kInt64: case DType::kUInt64: return 8;
    case DType::kInt8: case DType::kUInt8: case DType::kBool: return 1;
    case DType::kUndefined: case DType::kSequence: return 0;
  }
  return 0;
}

static const char* const kNames[] = {"undefined", "float32", "float16", "bfloat16", "float64",
                                     "int64",     "int32",   "int16",   "int8",     "uint8",
                                     "uint16",    "uint32",  "uint64",  "bool"};

const char* dtype_name(DType t) {
  if (t == DType::kSequence) return "sequence";
  int i = static_cast<int>(t);
  return (i >= 0 && i < static_cast<int>(std::size(kNames))) ? kNames[i] : "invalid";
}

DType dtype_from_name(const std::string& name) {
  for (int i = 1; i < static_cast<int>(std::size(kNames)); ++i)
    if (name == kNames[i]) return static_cast<DType>(i);
  return DType::kUndefined;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t checked_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    SY_CHECK(d >= 0, "negative dimension in shape " + shape_str(shape));
    if (d != 0 && n > (int64_t{1} << 62) / d)
      throw Error("shape " + shape_str(shape) + " has too many elements");
    n *= d;
  }
  return n;
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  numel_ = checked_numel(shape_);
  size_t bytes = nbytes();
  size_t rounded = ((bytes + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, rounded ? rounded : 64);
  owner_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  data_ = p;
}

Tensor Tensor::wrap(DType dtype, Shape shape, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = checked_numel(t.shape_);
  t.data_ = data;
  return t;
}

Tensor Tensor::view(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner) {
  Tensor t = wrap(dtype, std::move(shape), data);
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::slice(int64_t first, int64_t count) const {
  SY_CHECK(rank() >= 1 && first >= 0 && count >= 0 && first + count <= dim(0),
           "slice [" + std::to_string(first) + ", " + std::to_string(first + count) + ") of a tensor of shape " +
               shape_str(shape_));
  Shape s = shape_;
  s[0] = count;
  const size_t row_bytes = dim(0) ? nbytes() / static_cast<size_t>(dim(0)) : 0;
  return view(dtype_, std::move(s), static_cast<char*>(data_) + static_cast<size_t>(first) * row_bytes, owner_);
}

Tensor Tensor::reshaped(Shape shape) const {
  Tensor t = view(dtype_, std::move(shape), data_, owner_);
  SY_CHECK(t.numel() == numel_, "cannot view a tensor of shape " + shape_str(shape_) + " as " + shape_str(t.shape()));
  return t;
}

Tensor Tensor::clone() const {
  if (dtype_ == DType::kSequence) return *this;  // immutable items, shared
  Tensor t(dtype_, shape_);
  if (nbytes()) std::memcpy(t.data_, data_, nbytes());
  return t;
}

void Tensor::check_type(DType expected) const {
  if (expected != dtype_ && !(expected == DType::kUInt16 &&
                              (dtype_ == DType::kFloat16 || dtype_ == DType::kBFloat16)))
    throw Error(std::string("tensor holds ") + dtype_name(dtype_) + ", accessed as " +
                dtype_name(expected));
}

double Tensor::as_double(int64_t i) const {
  const char* p = static_cast<const char*>(data_);
  switch (dtype_) {
    case DType::kFloat32: return reinterpret_cast<const float*>(p)[i];
    case DType::kFloat64: return reinterpret_cast<const double*>(p)[i];
    case DType::kFloat16: return half_to_float(reinterpret_cast<const uint16_t*>(p)[i]);
    case DType::kBFloat16: return bfloat16_to_float(reinterpret_cast<const uint16_t*>(p)[i]);
    case DType::kInt64: return static_cast<double>(reinterpret_cast<const int64_t*>(p)[i]);
    case DType::kInt32: return reinterpret_cast<const int32_t*>(p)[i];
    case DType::kInt16: return reinterpret_cast<const int16_t*>(p)[i];
    case DType::kInt8: return reinterpret_cast<const int8_t*>(p)[i];
    case DType::kUInt8: return reinterpret_cast<const uint8_t*>(p)[i];
    case DType::kUInt16: return reinterpret_cast<const uint16_t*>(p)[i];
    case DType::kUInt32: return reinterpret_cast<const uint32_t*>(p)[i];
    case DType::kUInt64: return static_cast<double>(reinterpret_cast<const uint64_t*>(p)[i]);
    case DType::kBool: return reinterpret_cast<const bool*>(p)[i] ? 1.0 : 0.0;
    case DType::kUndefined: break;
  }
  throw Error("as_double on an undefined tensor");
}

int64_t Tensor::as_int64(int64_t i) const {
  switch (dtype_) {
    case DType::kInt64: return static_cast<const int64_t*>(data_)[i];
    case DType::kUInt64: return static_cast<int64_t>(static_cast<const uint64_t*>(data_)[i]);
    default: return static_cast<int64_t>(as_double(i));
  }
}

float half_to_float(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) { mant <<= 1; --exp; }
      bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  if (absx >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (absx < 0x38800000u) {  // subnormal or zero in half
    float af;
    std::memcpy(&af, &absx, 4);
    // Adding 0.5 pushes the value to a fixed exponent so the FPU rounds the mantissa for us.
    float t = af + 0.5f;
    uint32_t tb;
    std::memcpy(&tb, &t, 4);
    return static_cast<uint16_t>(sign | (tb - 0x3f000000u));
  }
  uint32_t mant_odd = (absx >> 13) & 1u;
  absx += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round to nearest even
  return static_cast<uint16_t>(sign | (absx >> 13));
}

float bfloat16_to_float(uint16_t b) { return bf16_to_float_inline(b); }

uint16_t float_to_bfloat16(float f) { return float_to_bf16_inline(f); }

}  // namespace switchyard
