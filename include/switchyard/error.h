// The one exception type Switchyard throws: a single line saying what is wrong and where.
#pragma once

#include <stdexcept>
#include <string>

namespace switchyard {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace switchyard

// SY_CHECK(cond, "message " + detail): throws switchyard::Error when cond is false.
#define SY_CHECK(cond, msg)                          \
  do {                                               \
    if (!(cond)) throw ::switchyard::Error(msg);     \
  } while (0)
