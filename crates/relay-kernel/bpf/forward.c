// SPDX-License-Identifier: GPL-2.0
// The media relay's forwarding path in the kernel, at each interface's ingress (tc). A UDP
// packet from a latched source to one of the relay's ports whose flow is in `flows` is
// rewritten as the relay would send it (from the address it came to and the relay's
// other port, to the other side, one hop less) and sent on: out of the interface the
// route names, or, for a destination on this host, up the stack. Anything else (no flow,
// not media, not to one of the relay's addresses, IP options or IPv6 extension headers,
// fragments, a VLAN tag, an unresolved neighbour, a TTL run out) goes on as if the program
// were not there (the next program or filter, then the relay's socket). IPv4 and IPv6
// share the tables, IPv4 addresses mapped into IPv6 (::ffff:a.b.c.d).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define LOOPBACK 1
#define PASS TC_ACT_UNSPEC
#define AF_INET 2
#define AF_INET6 10

// A flow's key: who sends, to which port of ours (network byte order).
struct key {
	__u8 saddr[16];
	__u16 sport;
	__u16 dport;
};

// Where its packets go, and what went (the counters the relay reads back).
struct flow {
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 pad;
	__u64 packets;
	__u64 bytes;
	__u64 last_ns;
	__u64 rtcp_packets;
	__u64 rtcp_bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct key);
	__type(value, struct flow);
} flows SEC(".maps");

// This host's addresses the relay takes packets at: a packet to any other address (for a
// VM behind a bridge, transit) is not the relay's.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u8[16]);
	__type(value, __u8);
} locals SEC(".maps");

#define IP_OFF ETH_HLEN
#define UDP4_OFF (ETH_HLEN + sizeof(struct iphdr))
#define UDP6_OFF (ETH_HLEN + sizeof(struct ipv6hdr))
#define IP_CSUM (IP_OFF + offsetof(struct iphdr, check))
#define ADDR (BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4)
#define PORT (BPF_F_MARK_MANGLED_0 | 2)

// Media only, as the relay takes it (RFC 7983): RTP and RTCP, DTLS, ZRTP.
static __always_inline int media(__u8 first)
{
	return (first >= 128 && first <= 191) || (first >= 16 && first <= 63);
}

// IPv4 `a` mapped into IPv6.
static __always_inline void mapped(__u8 *out, __u32 a)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &a, 4);
}

// True for RTCP (RFC 5761 §4: version 2, packet types 192–223), which rtcp-mux sends to
// the RTP port: counted apart, as the relay does.
static __always_inline int rtcp(__u8 *first, void *end)
{
	return (void *)(first + 2) <= end && (first[0] >> 6) == 2 && first[1] >= 192 &&
	       first[1] <= 223;
}

// Counts the packet (`len` bytes of payload) for its flow.
static __always_inline void count(struct flow *f, __u32 len, int is_rtcp)
{
	__sync_fetch_and_add(&f->packets, 1);
	__sync_fetch_and_add(&f->bytes, len);
	if (is_rtcp) {
		__sync_fetch_and_add(&f->rtcp_packets, 1);
		__sync_fetch_and_add(&f->rtcp_bytes, len);
	}
	f->last_ns = bpf_ktime_get_ns();
}

// Sends the rewritten packet on: up the stack (`local`), or out by the route.
static __always_inline int send(struct __sk_buff *skb, struct bpf_fib_lookup *fib, int local)
{
	if (local)
		return TC_ACT_OK;
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), fib->dmac, ETH_ALEN, 0);
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), fib->smac, ETH_ALEN, 0);
	return bpf_redirect(fib->ifindex, 0);
}

static __always_inline int forward4(struct __sk_buff *skb)
{
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = (void *)(long)skb->data + ETH_HLEN;
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *first = (void *)(udp + 1);
	if ((void *)(first + 1) > end)
		return PASS;
	if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_UDP ||
	    (ip->frag_off & bpf_htons(0x3fff)) || ip->ttl <= 1)
		return PASS;
	// Whole: the IP length within the frame (an Ethernet frame may be padded), UDP's the
	// rest of it.
	__u32 tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len > skb->len - ETH_HLEN || tot_len < sizeof(struct iphdr) + sizeof(struct udphdr) + 1 ||
	    bpf_ntohs(udp->len) != tot_len - sizeof(struct iphdr) || !media(*first))
		return PASS;
	int is_rtcp = rtcp(first, end);
	struct key k = { .sport = udp->source, .dport = udp->dest };
	mapped(k.saddr, ip->saddr);
	struct flow *f = bpf_map_lookup_elem(&flows, &k);
	if (!f)
		return PASS;
	__u8 to[16];
	mapped(to, ip->daddr);
	if (!bpf_map_lookup_elem(&locals, to))
		return PASS;
	__u32 saddr = ip->daddr, daddr, old_saddr = ip->saddr;
	__builtin_memcpy(&daddr, f->daddr + 12, 4);
	__u16 sport = f->sport, dport = f->dport, old_sport = udp->source, old_dport = udp->dest;
	// The route as for a packet that came in on loopback (whose forwarding the relay turns
	// on): the host routes nothing else because of it.
	struct bpf_fib_lookup fib = {
		.family = AF_INET,
		.l4_protocol = IPPROTO_UDP,
		.tot_len = tot_len,
		.ipv4_src = saddr,
		.ipv4_dst = daddr,
		.ifindex = LOOPBACK,
	};
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	int local = rc == BPF_FIB_LKUP_RET_NOT_FWDED && skb->ingress_ifindex == LOOPBACK;
	// A loopback address goes to loopback addresses only.
	if ((bpf_ntohl(saddr) >> 24) == 127 && (bpf_ntohl(daddr) >> 24) != 127)
		return PASS;
	if (!local && rc != BPF_FIB_LKUP_RET_SUCCESS)
		return PASS;
	// One hop less (two relays latched to each other do not pass a packet round forever).
	__u16 old_ttl = *(__u16 *)&ip->ttl;
	__u16 new_ttl = old_ttl;
	((__u8 *)&new_ttl)[0] -= 1;
	__u32 csum = UDP4_OFF + offsetof(struct udphdr, check);
	bpf_l3_csum_replace(skb, IP_CSUM, old_ttl, new_ttl, 2);
	bpf_l3_csum_replace(skb, IP_CSUM, old_saddr, saddr, 4);
	bpf_l3_csum_replace(skb, IP_CSUM, saddr, daddr, 4);
	bpf_l4_csum_replace(skb, csum, old_saddr, saddr, ADDR);
	bpf_l4_csum_replace(skb, csum, saddr, daddr, ADDR);
	bpf_l4_csum_replace(skb, csum, old_sport, sport, PORT);
	bpf_l4_csum_replace(skb, csum, old_dport, dport, PORT);
	bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, ttl), &new_ttl, 2, 0);
	bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, saddr), &saddr, 4, 0);
	bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, daddr), &daddr, 4, 0);
	bpf_skb_store_bytes(skb, UDP4_OFF + offsetof(struct udphdr, source), &sport, 2, 0);
	bpf_skb_store_bytes(skb, UDP4_OFF + offsetof(struct udphdr, dest), &dport, 2, 0);
	count(f, tot_len - sizeof(struct iphdr) - sizeof(struct udphdr), is_rtcp);
	return send(skb, &fib, local);
}

static __always_inline int forward6(struct __sk_buff *skb)
{
	void *end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip = (void *)(long)skb->data + ETH_HLEN;
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *first = (void *)(udp + 1);
	if ((void *)(first + 1) > end)
		return PASS;
	if (ip->version != 6 || ip->nexthdr != IPPROTO_UDP || ip->hop_limit <= 1)
		return PASS;
	// Whole, with a checksum (IPv6 requires one, RFC 8200 §8.1).
	__u32 plen = bpf_ntohs(ip->payload_len);
	if (plen > skb->len - ETH_HLEN - sizeof(struct ipv6hdr) ||
	    plen < sizeof(struct udphdr) + 1 || bpf_ntohs(udp->len) != plen || !udp->check ||
	    !media(*first))
		return PASS;
	int is_rtcp = rtcp(first, end);
	struct key k = { .sport = udp->source, .dport = udp->dest };
	__builtin_memcpy(k.saddr, &ip->saddr, 16);
	struct flow *f = bpf_map_lookup_elem(&flows, &k);
	if (!f)
		return PASS;
	// The old addresses, then the new: the address it came to, and the other side's.
	__u32 addrs[2][8];
	__builtin_memcpy(addrs[0], &ip->saddr, 16);
	__builtin_memcpy(addrs[0] + 4, &ip->daddr, 16);
	__builtin_memcpy(addrs[1], &ip->daddr, 16);
	__builtin_memcpy(addrs[1] + 4, f->daddr, 16);
	// An IPv4 address mapped into IPv6 on the wire is no IPv4 flow's.
	if (!(addrs[0][0] | addrs[0][1]) && addrs[0][2] == bpf_htonl(0xffff))
		return PASS;
	if (!bpf_map_lookup_elem(&locals, addrs[1]))
		return PASS;
	__u16 sport = f->sport, dport = f->dport, old_sport = udp->source, old_dport = udp->dest;
	struct bpf_fib_lookup fib = {
		.family = AF_INET6,
		.l4_protocol = IPPROTO_UDP,
		.tot_len = plen + sizeof(struct ipv6hdr),
		.ifindex = LOOPBACK,
	};
	__builtin_memcpy(fib.ipv6_src, addrs[1], 16);
	__builtin_memcpy(fib.ipv6_dst, addrs[1] + 4, 16);
	// ::1 goes to ::1 only.
	int from_lo = !(addrs[1][0] | addrs[1][1] | addrs[1][2]) && addrs[1][3] == bpf_htonl(1);
	int to_lo = !(addrs[1][4] | addrs[1][5] | addrs[1][6]) && addrs[1][7] == bpf_htonl(1);
	if (from_lo != to_lo)
		return PASS;
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	int local = rc == BPF_FIB_LKUP_RET_NOT_FWDED && skb->ingress_ifindex == LOOPBACK;
	if (!local && rc != BPF_FIB_LKUP_RET_SUCCESS)
		return PASS;
	__u8 hops = ip->hop_limit - 1;
	__u32 csum = UDP6_OFF + offsetof(struct udphdr, check);
	__s64 diff = bpf_csum_diff(addrs[0], 32, addrs[1], 32, 0);
	bpf_l4_csum_replace(skb, csum, 0, diff, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0);
	bpf_l4_csum_replace(skb, csum, old_sport, sport, PORT);
	bpf_l4_csum_replace(skb, csum, old_dport, dport, PORT);
	// No header checksum takes these changes back: the packet's sum (CHECKSUM_COMPLETE)
	// follows them.
	bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct ipv6hdr, hop_limit), &hops, 1,
			    BPF_F_RECOMPUTE_CSUM);
	bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct ipv6hdr, saddr), addrs[1], 32,
			    BPF_F_RECOMPUTE_CSUM);
	bpf_skb_store_bytes(skb, UDP6_OFF + offsetof(struct udphdr, source), &sport, 2, 0);
	bpf_skb_store_bytes(skb, UDP6_OFF + offsetof(struct udphdr, dest), &dport, 2, 0);
	count(f, plen - sizeof(struct udphdr), is_rtcp);
	return send(skb, &fib, local);
}

SEC("classifier")
int forward(struct __sk_buff *skb)
{
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = (void *)(long)skb->data;
	if ((void *)(eth + 1) > end || skb->gso_size || skb->vlan_present ||
	    skb->pkt_type != 0 /* PACKET_HOST */)
		return PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return forward4(skb);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return forward6(skb);
	return PASS;
}

char LICENSE[] SEC("license") = "GPL";
