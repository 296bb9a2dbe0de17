// blast: the C baseline for BenchmarkRawLinkSendOnly. It sends fixed-size
// frames of the swha EtherType with batched sendmmsg on an AF_PACKET socket
// (PACKET_QDISC_BYPASS, 16 MiB send buffer, 256 frames per call: the
// settings of swha's AFPacketLink) for two seconds and prints frames/s.
// Used to check that the Go link's send path is at the kernel's limit, not
// the runtime's. Not part of the build; run.sh compiles and runs it.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

enum { BATCH = 256 };

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s IFNAME FRAME_BYTES\n", argv[0]);
		return 2;
	}
	int size = atoi(argv[2]);
	if (size < 14 || size > 65535) {
		fprintf(stderr, "blast: frame size %s out of range 14..65535\n", argv[2]);
		return 2;
	}
	int ifindex = if_nametoindex(argv[1]);
	if (ifindex == 0) {
		perror(argv[1]);
		return 1;
	}
	int fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	int one = 1, sndbuf = 16 << 20;
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);

	struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};
	memset(to.sll_addr, 0xff, 6);
	unsigned char *frame = calloc(1, size);
	memset(frame, 0xff, 6);    // broadcast destination
	frame[12] = 0x88, frame[13] = 0xb5; // swha's EtherType

	static struct mmsghdr msgs[BATCH];
	static struct iovec iov[BATCH];
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){.iov_base = frame, .iov_len = size};
		msgs[i].msg_hdr = (struct msghdr){.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov[i], .msg_iovlen = 1};
	}
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	long sent = 0;
	double elapsed;
	do {
		int n = sendmmsg(fd, msgs, BATCH, 0);
		if (n < 0) {
			perror("sendmmsg");
			return 1;
		}
		sent += n;
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed = (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
	} while (elapsed < 2.0);
	printf("%d-byte frames: %.0f frames/s, %.0f MB/s\n", size, sent / elapsed, sent * (double)size / elapsed / 1e6);
	return 0;
}
