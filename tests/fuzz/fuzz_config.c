/*
 * Fuzzes the config parsers: the input is an INI file for
 * md_config_load_string on a defaulted config, and the same bytes as a
 * Redis URL, a listen spec and a CPU list.
 *
 * Beyond "no crash": whatever loads must print (md_config_print) to text
 * that loads again -- the --check-config round trip -- unless a printed
 * line outgrew inih's line buffer (quotes and "***" can lengthen a line).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static md_config cfg, again;
    char err[512], out[1200];
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    md_config_defaults(&cfg);
    if (md_config_load_string(&cfg, s, "fuzz.ini", err, sizeof err) == 0) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (f) {
            md_config_print(&cfg, f);
            fclose(f);
            md_config_defaults(&again);
            if (md_config_load_string(&again, text, "printed", err, sizeof err) != 0 &&
                !strstr(err, "line too long")) {
                fprintf(stderr, "printed config does not load back: %s\n%s\n", err, text);
                abort();
            }
            free(text);
        }
    }

    md_redis_url u;
    md_listen_spec l;
    int cpus[MD_MAX_WORKERS], n;
    md_redis_url_parse(s, &u, err, sizeof err);
    md_listen_parse(s, &l, err, sizeof err);
    md_cpus_parse(s, cpus, MD_MAX_WORKERS, &n, err, sizeof err);
    md_redis_url_redact(s, out, sizeof out);
    free(s);
    return 0;
}
