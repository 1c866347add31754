// Result<T>: the error-or-value type every fallible zrun function returns.
// std::expected is C++23 and not in GCC 12's libstdc++, so this is a small,
// std::expected-shaped replacement. Errors carry a message (outer context first,
// added on the way out with context()) and the errno that caused them, if any.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace zrun::base {

struct Error {
  std::string msg;
  int err = 0;  // errno, 0 if not a system error

  // Full text: "msg: strerror(err)" when err is set.
  [[nodiscard]] std::string text() const;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}      // NOLINT(google-explicit-constructor)
  Result(Error e) : v_(std::move(e)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  Error& error() & { return std::get<1>(v_); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : e_(std::move(e)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  void value() const {}
  Error& error() & { return e_; }
  const Error& error() const& { return e_; }
  Error&& error() && { return std::move(e_); }

 private:
  Error e_;
  bool ok_ = true;
};

inline Result<void> ok() { return {}; }

// An error with no errno.
Error make_error(std::string msg);
// An error carrying errno (captured by the caller right after the failing call).
Error sys_error(std::string msg, int err = errno);

// Prefix the error message with outer context: "ctx: inner".
inline Error context(Error e, std::string_view ctx) {
  e.msg = std::string(ctx) + ": " + e.msg;
  return e;
}

}  // namespace zrun::base

// Propagate an error, otherwise yield the value (GNU statement expression; GCC and clang).
#define ZRUN_TRY(expr)                                            \
  ({                                                              \
    auto zrun_try_r_ = (expr);                                    \
    if (!zrun_try_r_.ok()) return std::move(zrun_try_r_).error(); \
    std::move(zrun_try_r_).value();                               \
  })

// Same, with context prepended to the error message.
#define ZRUN_TRY_CTX(expr, ctx)                                                                 \
  ({                                                                                            \
    auto zrun_try_r_ = (expr);                                                                  \
    if (!zrun_try_r_.ok()) return ::zrun::base::context(std::move(zrun_try_r_).error(), (ctx)); \
    std::move(zrun_try_r_).value();                                                             \
  })
