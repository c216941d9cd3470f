/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/frame.c: 2-octet length framing reassembly however the
 * stream is split, and its error cases. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/dns.h"
#include "dotproxy/error.h"

/* Copy up to n bytes of src into the frame buffer, as a read() would. */
static size_t feed(dotproxy_frame *f, const uint8_t *src, size_t n)
{
    uint8_t *where = NULL;
    size_t room = dotproxy_frame_space(f, &where);
    ck_assert_ptr_nonnull(where);
    if (n > room)
        n = room;
    memcpy(where, src, n);
    dotproxy_frame_commit(f, n);
    return n;
}

/* A stream of frames whose message i has length lens[i] and every octet
 * equal to (i + 1) & 0xFF. Returns the stream length. */
static size_t make_stream(uint8_t *out, const size_t *lens, size_t count)
{
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        ck_assert_int_eq(dotproxy_frame_put_prefix(out + n, lens[i]), 0);
        n += 2;
        memset(out + n, (int)((i + 1) & 0xFF), lens[i]);
        n += lens[i];
    }
    return n;
}

static void check_msg(const uint8_t *msg, size_t len, size_t want_len, size_t index)
{
    ck_assert_uint_eq(len, want_len);
    for (size_t j = 0; j < len; j++)
        ck_assert_uint_eq(msg[j], (index + 1) & 0xFF);
}

START_TEST(test_frame_reassembles_prefix_split_across_reads)
{
    uint8_t buf[600], stream[600];
    const size_t lens[] = {300};
    size_t n = make_stream(stream, lens, 1);
    dotproxy_frame f;
    const uint8_t *msg;
    size_t len;

    dotproxy_frame_init(&f, buf, sizeof(buf));
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 0);
    feed(&f, stream, 1);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 0);
    ck_assert_uint_eq(dotproxy_frame_pending(&f), 1);
    feed(&f, stream + 1, n - 1);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 1);
    check_msg(msg, len, 300, 0);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 0);
    ck_assert_uint_eq(dotproxy_frame_pending(&f), 0);
}
END_TEST

START_TEST(test_frame_returns_many_messages_from_one_read)
{
    uint8_t buf[2048], stream[2048];
    const size_t lens[] = {12, 1, 100, 33, 512, 7};
    size_t n = make_stream(stream, lens, 6);
    dotproxy_frame f;
    const uint8_t *msg;
    size_t len;

    dotproxy_frame_init(&f, buf, sizeof(buf));
    ck_assert_uint_eq(feed(&f, stream, n), n);
    ck_assert_uint_eq(dotproxy_frame_pending(&f), 0); /* all whole */
    for (size_t i = 0; i < 6; i++) {
        ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 1);
        check_msg(msg, len, lens[i], i);
    }
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 0);
}
END_TEST

START_TEST(test_frame_reassembles_stream_fed_one_byte_at_a_time)
{
    uint8_t buf[64], stream[4096];
    size_t lens[40];
    for (size_t i = 0; i < 40; i++)
        lens[i] = 1 + (i * 7) % 62; /* up to cap - 2 */
    size_t n = make_stream(stream, lens, 40);
    dotproxy_frame f;
    const uint8_t *msg;
    size_t len;
    size_t got = 0;

    dotproxy_frame_init(&f, buf, sizeof(buf));
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(feed(&f, stream + i, 1), 1);
        int rc;
        while ((rc = dotproxy_frame_next(&f, &msg, &len)) == 1) {
            ck_assert_uint_lt(got, 40);
            check_msg(msg, len, lens[got], got);
            got++;
        }
        ck_assert_int_eq(rc, 0);
    }
    ck_assert_uint_eq(got, 40);
    ck_assert_uint_eq(dotproxy_frame_pending(&f), 0);
}
END_TEST

START_TEST(test_frame_moves_partial_message_to_front_when_buffer_end_is_reached)
{
    /* cap 20: a 10-octet message then 6 octets of an 18-octet one; the
     * second cannot complete in place, so space() must compact. */
    uint8_t buf[20], stream[64];
    const size_t lens[] = {10, 18};
    size_t n = make_stream(stream, lens, 2);
    dotproxy_frame f;
    const uint8_t *msg;
    size_t len;

    dotproxy_frame_init(&f, buf, sizeof(buf));
    ck_assert_uint_eq(feed(&f, stream, 20), 20);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 1);
    check_msg(msg, len, 10, 0);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 0);
    ck_assert_uint_eq(dotproxy_frame_pending(&f), 8);
    uint8_t *where;
    ck_assert_uint_eq(dotproxy_frame_space(&f, &where), 12);
    ck_assert_ptr_eq(where, buf + 8);
    ck_assert_uint_eq(feed(&f, stream + 20, n - 20), n - 20);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 1);
    check_msg(msg, len, 18, 1);
}
END_TEST

START_TEST(test_frame_rejects_zero_length_frame)
{
    uint8_t buf[100];
    const uint8_t stream[] = {0, 3, 'a', 'b', 'c', 0, 0, 0, 1, 'x'};
    dotproxy_frame f;
    const uint8_t *msg;
    size_t len;

    dotproxy_frame_init(&f, buf, sizeof(buf));
    feed(&f, stream, sizeof(stream));
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 1);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), DOTPROXY_EMALFORMED);
    /* the stream cannot continue: the error repeats */
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), DOTPROXY_EMALFORMED);
    ck_assert_uint_eq(dotproxy_frame_pending(&f), 5);
}
END_TEST

START_TEST(test_frame_takes_65535_octet_message_with_65537_octet_buffer)
{
    static uint8_t buf[65537], stream[65537 + 5];
    const size_t lens[] = {65535, 1};
    size_t n = make_stream(stream, lens, 2);
    dotproxy_frame f;
    const uint8_t *msg;
    size_t len;

    dotproxy_frame_init(&f, buf, sizeof(buf));
    /* a read much smaller than the message, then the rest */
    ck_assert_uint_eq(feed(&f, stream, 1000), 1000);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 0);
    ck_assert_uint_eq(feed(&f, stream + 1000, n - 1000), 65537 - 1000);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 1);
    check_msg(msg, len, 65535, 0);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 0);
    ck_assert_uint_eq(feed(&f, stream + 65537, n - 65537), 3);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 1);
    check_msg(msg, len, 1, 1);
}
END_TEST

START_TEST(test_frame_reports_frame_too_large_for_buffer)
{
    uint8_t buf[514];
    const uint8_t big[] = {0x02, 0x01}; /* 513 octets: one more than fits */
    const uint8_t fits[] = {0x02, 0x00};
    dotproxy_frame f;
    const uint8_t *msg;
    size_t len;

    dotproxy_frame_init(&f, buf, sizeof(buf));
    feed(&f, big, 2);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), DOTPROXY_ENOSPC);
    dotproxy_frame_init(&f, buf, sizeof(buf));
    feed(&f, fits, 2);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 0);
    uint8_t *where;
    ck_assert_uint_eq(dotproxy_frame_space(&f, &where), 512);
}
END_TEST

START_TEST(test_frame_put_prefix_writes_big_endian_length)
{
    uint8_t p[2];
    ck_assert_int_eq(dotproxy_frame_put_prefix(p, 1), 0);
    ck_assert_uint_eq(p[0], 0);
    ck_assert_uint_eq(p[1], 1);
    ck_assert_int_eq(dotproxy_frame_put_prefix(p, 0x1234), 0);
    ck_assert_uint_eq(p[0], 0x12);
    ck_assert_uint_eq(p[1], 0x34);
    ck_assert_int_eq(dotproxy_frame_put_prefix(p, 65535), 0);
    ck_assert_uint_eq(p[0], 0xFF);
    ck_assert_uint_eq(p[1], 0xFF);
    ck_assert_int_eq(dotproxy_frame_put_prefix(p, 0), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_frame_put_prefix(p, 65536), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_frame_put_prefix(NULL, 5), DOTPROXY_EINVAL);
    ck_assert_uint_eq(p[0], 0xFF); /* untouched on error */
}
END_TEST

START_TEST(test_frame_pending_counts_only_incomplete_tail)
{
    uint8_t buf[100], stream[100];
    const size_t lens[] = {5, 9};
    size_t n = make_stream(stream, lens, 2);
    dotproxy_frame f;
    const uint8_t *msg;
    size_t len;

    dotproxy_frame_init(&f, buf, sizeof(buf));
    feed(&f, stream, n - 3);
    /* first message whole (not pending), 8 octets of the second held */
    ck_assert_uint_eq(dotproxy_frame_pending(&f), n - 3 - 7);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 1);
    ck_assert_uint_eq(dotproxy_frame_pending(&f), n - 3 - 7);
    ck_assert_int_eq(dotproxy_frame_next(&f, &msg, &len), 0);
    ck_assert_int_eq(dotproxy_frame_next(NULL, &msg, &len), DOTPROXY_EINVAL);
}
END_TEST

static Suite *frame_suite(void)
{
    Suite *s = suite_create("frame");
    TCase *tc = tcase_create("frame");
    tcase_add_test(tc, test_frame_reassembles_prefix_split_across_reads);
    tcase_add_test(tc, test_frame_returns_many_messages_from_one_read);
    tcase_add_test(tc, test_frame_reassembles_stream_fed_one_byte_at_a_time);
    tcase_add_test(tc, test_frame_moves_partial_message_to_front_when_buffer_end_is_reached);
    tcase_add_test(tc, test_frame_rejects_zero_length_frame);
    tcase_add_test(tc, test_frame_takes_65535_octet_message_with_65537_octet_buffer);
    tcase_add_test(tc, test_frame_reports_frame_too_large_for_buffer);
    tcase_add_test(tc, test_frame_put_prefix_writes_big_endian_length);
    tcase_add_test(tc, test_frame_pending_counts_only_incomplete_tail);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(frame_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
