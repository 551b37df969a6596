/* schema/: compiled event schemas, validation and JSON -> Avro transcoding, and the registry
 * cache. See schema/README.md. (API being built for issue 4.) */
#ifndef SCHEMA_H
#define SCHEMA_H

#endif
