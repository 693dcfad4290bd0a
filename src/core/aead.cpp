/*
 * aead.cpp — AES-256-GCM via OpenSSL EVP.
 *
 * One EVP_CIPHER is fetched once per process and one context is kept per thread and reset per
 * call, so the hot paths (decrypting a value in a distance function, an element during a cold
 * index load) pay for the key schedule and the data, not for allocation. On failure the output
 * buffer is zeroed, so no partially decrypted plaintext escapes.
 */
#include "core/aead.h"

#include "core/secure.h"

#include <climits>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace vector_vault
{

namespace
{

/* The process-wide cipher implementation. */
const EVP_CIPHER *
Cipher()
{
	static const EVP_CIPHER *cipher = EVP_aes_256_gcm();
	return cipher;
}

/* A per-thread context that frees itself when the thread ends. */
struct ThreadContext
{
	EVP_CIPHER_CTX *ctx = nullptr;

	~ThreadContext()
	{
		if (ctx != nullptr)
			EVP_CIPHER_CTX_free(ctx);
	}
};

/* Returns this thread's reset cipher context, or nullptr if OpenSSL cannot allocate one. */
EVP_CIPHER_CTX *
Context()
{
	thread_local ThreadContext holder;
	if (holder.ctx == nullptr)
		holder.ctx = EVP_CIPHER_CTX_new();
	else
		EVP_CIPHER_CTX_reset(holder.ctx);
	return holder.ctx;
}

} // namespace

/* Fills buf with cryptographically strong random bytes. */
Status
RandomBytes(uint8_t *buf, size_t len)
{
	if (len > INT_MAX || RAND_bytes(buf, static_cast<int>(len)) != 1)
		return Status::Error(Code::kInternal, "could not generate random bytes");
	return Status::Ok();
}

/* Encrypts and authenticates one message. */
Status
AeadSeal(const uint8_t key[kKeyBytes], const uint8_t nonce[kNonceBytes], const uint8_t *aad,
		 size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct, uint8_t tag[kTagBytes])
{
	EVP_CIPHER_CTX *ctx = Context();
	int out_len = 0;
	if (ctx == nullptr || len > INT_MAX || aad_len > INT_MAX)
		return Status::Error(Code::kInternal, "could not set up AES-256-GCM");
	if (EVP_EncryptInit_ex(ctx, Cipher(), nullptr, key, nonce) != 1)
		return Status::Error(Code::kInternal, "could not initialise AES-256-GCM encryption");
	if (aad_len > 0 &&
		EVP_EncryptUpdate(ctx, nullptr, &out_len, aad, static_cast<int>(aad_len)) != 1)
		return Status::Error(Code::kInternal, "AES-256-GCM encryption failed");
	if (len > 0 && EVP_EncryptUpdate(ctx, ct, &out_len, pt, static_cast<int>(len)) != 1)
		return Status::Error(Code::kInternal, "AES-256-GCM encryption failed");
	if (EVP_EncryptFinal_ex(ctx, ct + len, &out_len) != 1 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes), tag) != 1)
		return Status::Error(Code::kInternal, "AES-256-GCM encryption failed");
	return Status::Ok();
}

/* Authenticates and decrypts one message; zeroes pt when authentication fails. */
Status
AeadOpen(const uint8_t key[kKeyBytes], const uint8_t nonce[kNonceBytes], const uint8_t *aad,
		 size_t aad_len, const uint8_t *ct, size_t len, const uint8_t tag[kTagBytes], uint8_t *pt)
{
	EVP_CIPHER_CTX *ctx = Context();
	int out_len = 0;
	if (ctx == nullptr || len > INT_MAX || aad_len > INT_MAX)
		return Status::Error(Code::kInternal, "could not set up AES-256-GCM");
	if (EVP_DecryptInit_ex(ctx, Cipher(), nullptr, key, nonce) != 1)
		return Status::Error(Code::kInternal, "could not initialise AES-256-GCM decryption");
	if (aad_len > 0 &&
		EVP_DecryptUpdate(ctx, nullptr, &out_len, aad, static_cast<int>(aad_len)) != 1)
		return Status::Error(Code::kInternal, "AES-256-GCM decryption failed");
	if (len > 0 && EVP_DecryptUpdate(ctx, pt, &out_len, ct, static_cast<int>(len)) != 1)
	{
		SecureZero(pt, len);
		return Status::Error(Code::kInternal, "AES-256-GCM decryption failed");
	}
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
							const_cast<uint8_t *>(tag)) != 1 ||
		EVP_DecryptFinal_ex(ctx, pt + len, &out_len) != 1)
	{
		SecureZero(pt, len);
		return Status::Error(Code::kCorrupt, "authentication tag mismatch");
	}
	return Status::Ok();
}

} // namespace vector_vault
