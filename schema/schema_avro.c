/* Schema-directed JSON -> Avro transcoder (being built for issue 4). */
#include "schema.h"

int schema_avro_placeholder_(void);
int schema_avro_placeholder_(void)
{
    return 0;
}
