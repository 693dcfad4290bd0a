/*
 * aead.cpp — AES-256-GCM via OpenSSL EVP.
 *
 * One EVP_CIPHER is fetched once per process and one context is kept per thread and direction.
 * The decrypting context also keeps its key schedule: when the next value is opened under the
 * same key (an exact scan opens every row of a vault under one key), only the nonce is set again,
 * so the hot paths (a distance function per row, an element during a cold index load) pay for
 * the data, not for allocation or key expansion. The context holds a copy of the last key to
 * compare against (the key schedule it keeps is equivalent to the key anyway); AeadForgetKeys()
 * wipes both, and the key cache calls it whenever it drops keys. On failure the output buffer is
 * zeroed, so no partially decrypted plaintext escapes.
 */
#include "core/aead.h"

#include "core/secure.h"

#include <climits>
#include <cstring>
#include <openssl/crypto.h>
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

/* A per-thread context that frees itself (and wipes the key it remembers) when the thread ends. */
struct ThreadContext
{
	EVP_CIPHER_CTX *ctx = nullptr;
	bool keyed = false; /* ctx holds the schedule of `key` (decryption only) */
	uint8_t key[kKeyBytes] = {};

	/* Drops the remembered key and its schedule. */
	void Forget()
	{
		if (ctx != nullptr)
			EVP_CIPHER_CTX_reset(ctx);
		keyed = false;
		SecureZero(key, sizeof(key));
	}

	~ThreadContext()
	{
		Forget();
		if (ctx != nullptr)
			EVP_CIPHER_CTX_free(ctx);
	}
};

thread_local ThreadContext g_seal;
thread_local ThreadContext g_open;

/* Returns this thread's reset sealing context, or nullptr if OpenSSL cannot allocate one. */
EVP_CIPHER_CTX *
SealContext()
{
	if (g_seal.ctx == nullptr)
		g_seal.ctx = EVP_CIPHER_CTX_new();
	else
		EVP_CIPHER_CTX_reset(g_seal.ctx);
	return g_seal.ctx;
}

/* Readies this thread's opening context for key and nonce, re-using the key schedule when the
 * key is the one it already holds; false when OpenSSL fails. */
bool
OpenContextFor(const uint8_t key[kKeyBytes], const uint8_t nonce[kNonceBytes])
{
	if (g_open.ctx == nullptr && (g_open.ctx = EVP_CIPHER_CTX_new()) == nullptr)
		return false;
	if (g_open.keyed && CRYPTO_memcmp(g_open.key, key, kKeyBytes) == 0)
		return EVP_DecryptInit_ex(g_open.ctx, nullptr, nullptr, nullptr, nonce) == 1;
	g_open.Forget();
	if (EVP_DecryptInit_ex(g_open.ctx, Cipher(), nullptr, key, nonce) != 1)
		return false;
	memcpy(g_open.key, key, kKeyBytes);
	g_open.keyed = true;
	return true;
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
	EVP_CIPHER_CTX *ctx = SealContext();
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
	int out_len = 0;
	if (len > INT_MAX || aad_len > INT_MAX)
		return Status::Error(Code::kInternal, "could not set up AES-256-GCM");
	if (!OpenContextFor(key, nonce))
	{
		g_open.Forget();
		return Status::Error(Code::kInternal, "could not initialise AES-256-GCM decryption");
	}
	EVP_CIPHER_CTX *ctx = g_open.ctx;
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

/* Wipes the key (and schedule) this thread's decrypting context remembers. */
void
AeadForgetKeys()
{
	g_open.Forget();
	g_seal.Forget();
}

} // namespace vector_vault
