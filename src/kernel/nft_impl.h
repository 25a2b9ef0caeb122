/*
 * nft_impl.h - what nft.c (the socket, batches, elements) and nft_rules.c
 * (the tables, sets, chains and rules nft_install() writes) share.
 * Private to src/kernel/; kernel/nft.h is the interface.
 */
#ifndef NATPMP_KERNEL_NFT_IMPL_H
#define NATPMP_KERNEL_NFT_IMPL_H

#include <libmnl/libmnl.h>
#include <libnftnl/set.h>
#include <net/if.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/nft.h"

/* nft's datatype numbers; a concatenation is (first << 6 | second) << 6 | third. */
#define NFT_TYPE_IPADDR 7
#define NFT_TYPE_IP6ADDR 8
#define NFT_TYPE_INET_PROTOCOL 12
#define NFT_TYPE_INET_SERVICE 13
#define NFT_TYPE_BITS 6
#define NFT_CONCAT2(a, b) ((a) << NFT_TYPE_BITS | (b))
#define NFT_CONCAT3(a, b, c) (NFT_CONCAT2(a, b) << NFT_TYPE_BITS | (c))
/* Each part of a concatenation takes a whole 32-bit register. */
#define NFT_REG_LEN 4

/* Elements per message: well under a page each, and few acknowledgements. */
#define NFT_ELEMS_PER_MSG 256
/* Room kept free in the buffer for the next message. */
#define NFT_MSG_ROOM (64 * 1024)
/* How long the kernel may take to acknowledge a batch. */
#define NFT_ACK_TIMEOUT_SEC 5
/* Batch buffer kept between commits; a larger one is given back after its commit. */
#define NFT_KEEP_BYTES (1024 * 1024)
/* Room for one read of acknowledgements. */
#define NFT_RECV_SIZE 16384

/* The tables' sets; their index + 1 is their id within a batch.  The pinholes are table ip6's. */
enum { NFT_SET_EXTERNAL, NFT_SET_MAPPINGS, NFT_SET_SOURCES, NFT_SET_PINHOLES, NFT_N_SETS };

struct nft_set_def {
	const char *name;
	uint16_t family; /* NFPROTO_IPV4: table ip; NFPROTO_IPV6: table ip6 */
	uint32_t flags;
	uint32_t key_type, key_len, data_type, data_len;
};
extern const struct nft_set_def nft_sets[NFT_N_SETS];

/* Element operations on one set waiting to become one message. */
struct nft_pending {
	struct nftnl_set *elems;
	uint16_t type; /* NFT_MSG_NEWSETELEM or NFT_MSG_DELSETELEM */
	size_t n;
};

struct nft {
	struct mnl_socket *nl;
	uint32_t seq;
	char table[64];
	char chain[64];
	char ifname[IFNAMSIZ];

	char *buf; /* the batch being built */
	size_t len, cap;
	uint32_t batch_seq; /* seq of NFNL_MSG_BATCH_BEGIN */
	uint32_t last_seq;  /* seq of the batch's last message: a question asked meanwhile takes one too */
	size_t n_msgs;      /* messages after BEGIN */
	size_t n_elems;     /* element operations queued since nft_begin() (nft_queued()) */
	int error;          /* first failure while building: reported by nft_commit() */
	struct nft_pending pending[NFT_N_SETS];
	int timeout_update; /* re-adding an element updates its timeout (nft_probe_timeout_update()) */
	uint32_t presize;   /* the ip maps' size at the next install (nft_presize()); 0: none given */
	uint32_t pinhole_mark, pinhole_mask; /* what the pinhole rule sets in a packet's mark */
};

/*
 * Builders: each appends one message to the batch and returns 0 or
 * n->error (the first failure while building, which nft_commit() reports).
 */
struct nlmsghdr *nft_msg(struct nft *n, uint16_t family, uint16_t type, uint16_t flags);
void nft_push(struct nft *n, struct nlmsghdr *nlh);
/* Sends the element operations queued on every set as their messages. */
void nft_flush_all(struct nft *n);
/* A table message for table <name> of family (NFPROTO_IPV4 or NFPROTO_IPV6). */
int nft_table_msg(struct nft *n, uint16_t family, uint16_t type, uint16_t flags);

#endif
