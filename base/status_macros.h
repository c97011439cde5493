// The one local pair of status macros (Abseil 20220623 ships none). Both sides.
#ifndef VOW_BASE_STATUS_MACROS_H_
#define VOW_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define VOW_CONCAT_INNER_(a, b) a##b
#define VOW_CONCAT_(a, b) VOW_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status vow_status_ = (expr);               \
    if (!vow_status_.ok()) return vow_status_;         \
  } while (0)

// `lhs = value of expr`, or return its error. `lhs` may declare a variable.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(VOW_CONCAT_(vow_statusor_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()

#endif  // VOW_BASE_STATUS_MACROS_H_
