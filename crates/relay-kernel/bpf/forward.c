// SPDX-License-Identifier: GPL-2.0
// The media relay's forwarding path in the kernel, at each interface's ingress (tc). A UDP
// packet from a latched source to one of the relay's ports whose flow is in `flows` is
// rewritten as the relay would send it (from the address it came to and the relay's
// other port, to the other side) and sent on: out of the interface the route names, or,
// for a destination on this host, up the stack. Anything else (no flow, not media, not to
// one of this host's addresses, IP options, fragments, a VLAN tag, an unresolved
// neighbour, a TTL run out) goes on as if the program were not there (the next program or
// filter, then the relay's socket).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define LOOPBACK 1
#define PASS TC_ACT_UNSPEC
#define AF_INET 2

// A flow's key: who sends, to which port of ours (network byte order).
struct key {
	__u32 saddr;
	__u16 sport;
	__u16 dport;
};

// Where its packets go, and what went (the counters the relay reads back).
struct flow {
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u64 packets;
	__u64 bytes;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct key);
	__type(value, struct flow);
} flows SEC(".maps");

// This host's IPv4 addresses the relay takes packets at (network byte order): a packet to
// any other address (for a VM behind a bridge, transit) is not the relay's.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} locals SEC(".maps");

#define IP_OFF ETH_HLEN
#define UDP_OFF (ETH_HLEN + sizeof(struct iphdr))
#define IP_CSUM (IP_OFF + offsetof(struct iphdr, check))
#define UDP_CSUM (UDP_OFF + offsetof(struct udphdr, check))
#define ADDR (BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4)
#define PORT (BPF_F_MARK_MANGLED_0 | 2)

SEC("classifier")
int forward(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *first = (void *)(udp + 1);
	if ((void *)(first + 1) > end || skb->gso_size || skb->vlan_present ||
	    skb->pkt_type != 0 /* PACKET_HOST */)
		return PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5 ||
	    ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x3fff)) || ip->ttl <= 1)
		return PASS;
	// Whole: the IP length within the frame (an Ethernet frame may be padded), UDP's the
	// rest of it.
	__u32 tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len > skb->len - ETH_HLEN || bpf_ntohs(udp->len) != tot_len - sizeof(struct iphdr))
		return PASS;
	// Media only, as the relay takes it (RFC 7983): RTP and RTCP, DTLS, ZRTP.
	if (!((*first >= 128 && *first <= 191) || (*first >= 16 && *first <= 63)))
		return PASS;
	struct key k = { .saddr = ip->saddr, .sport = udp->source, .dport = udp->dest };
	struct flow *f = bpf_map_lookup_elem(&flows, &k);
	if (!f)
		return PASS;
	__u32 to = ip->daddr;
	if (!bpf_map_lookup_elem(&locals, &to))
		return PASS;
	__u32 saddr = ip->daddr, daddr = f->daddr, old_saddr = ip->saddr;
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
	// A loopback address goes no further than this host.
	if (!local && (rc != BPF_FIB_LKUP_RET_SUCCESS || (bpf_ntohl(saddr) >> 24) == 127))
		return PASS;
	__u32 len = tot_len - sizeof(struct iphdr) - sizeof(struct udphdr);
	// One hop less (two relays latched to each other do not pass a packet round forever).
	__u16 old_ttl = *(__u16 *)&ip->ttl;
	__u16 new_ttl = old_ttl;
	((__u8 *)&new_ttl)[0] -= 1;
	bpf_l3_csum_replace(skb, IP_CSUM, old_ttl, new_ttl, 2);
	bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, ttl), &new_ttl, 2, 0);
	bpf_l4_csum_replace(skb, UDP_CSUM, old_saddr, saddr, ADDR);
	bpf_l4_csum_replace(skb, UDP_CSUM, saddr, daddr, ADDR);
	bpf_l4_csum_replace(skb, UDP_CSUM, old_sport, sport, PORT);
	bpf_l4_csum_replace(skb, UDP_CSUM, old_dport, dport, PORT);
	bpf_l3_csum_replace(skb, IP_CSUM, old_saddr, saddr, 4);
	bpf_l3_csum_replace(skb, IP_CSUM, saddr, daddr, 4);
	bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, saddr), &saddr, 4, 0);
	bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, daddr), &daddr, 4, 0);
	bpf_skb_store_bytes(skb, UDP_OFF + offsetof(struct udphdr, source), &sport, 2, 0);
	bpf_skb_store_bytes(skb, UDP_OFF + offsetof(struct udphdr, dest), &dport, 2, 0);
	__sync_fetch_and_add(&f->packets, 1);
	__sync_fetch_and_add(&f->bytes, len);
	f->last_ns = bpf_ktime_get_ns();
	if (local)
		return TC_ACT_OK;
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), fib.dmac, ETH_ALEN, 0);
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), fib.smac, ETH_ALEN, 0);
	return bpf_redirect(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
