/*
 * status.h — how the core reports failure.
 *
 * Core functions return a Status instead of throwing, so bridge code can call them from any
 * Postgres frame and turn a failure into ereport() after the call has returned. A Status is
 * trivially destructible (a code and a fixed buffer), so it may live across Postgres calls that
 * can longjmp. Messages follow Postgres style (lower case, no trailing period) and must never
 * contain a key, a password, an API-key secret or plaintext.
 */
#pragma once
#include "core/pure.h"

#include <cstdarg>
#include <cstddef>
#include <type_traits>

namespace vector_vault
{

/* What went wrong, coarse enough for the bridge to pick a SQLSTATE. */
enum class Code
{
	kOk = 0,
	kInvalidInput,   /* malformed user input: 22P02 / 22023 */
	kOutOfRange,     /* a value outside a documented limit: 22003 / 54000 */
	kCorrupt,        /* ciphertext or stored structure failed validation or authentication: 22000 */
	kKeyUnavailable, /* key material missing or unusable: 22000-class, crypto failure */
	kIo,             /* file system error */
	kNotFound,       /* a named thing does not exist */
	kInternal        /* a bug or a library failure */
};

/* A result: Code::kOk or a code plus a message safe to show to users and logs. */
class Status
{
  public:
	Status() = default;

	/* An OK status. */
	static Status Ok()
	{
		return Status();
	}

	/* A failure with a printf-style message. Never pass secrets as arguments. */
	static Status Error(Code code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

	/* True when the operation succeeded. */
	bool ok() const
	{
		return code_ == Code::kOk;
	}

	/* The failure class. */
	Code code() const
	{
		return code_;
	}

	/* The message (empty for OK). */
	const char *message() const
	{
		return message_;
	}

  private:
	Code code_ = Code::kOk;
	char message_[240] = {0};
};

/* The claim above, checked: a Status may be skipped over by a longjmp. */
static_assert(
	std::is_trivially_destructible<Status>::value,
	"Status must be trivially destructible (it lives across Postgres calls that longjmp)");

} // namespace vector_vault

/* Returns early from the enclosing function when a Status-returning expression fails. */
#define VV_RETURN_IF_ERROR(expr)                                                                   \
	do                                                                                             \
	{                                                                                              \
		::vector_vault::Status vv_status_ = (expr);                                                \
		if (!vv_status_.ok())                                                                      \
			return vv_status_;                                                                     \
	} while (0)
