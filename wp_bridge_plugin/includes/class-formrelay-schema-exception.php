<?php
/**
 * The exception a failed schema step throws (FormRelay_Schema).
 *
 * Its message is plain text that says which step failed and why, never any
 * row data; it is escaped where it is shown (the schema notice).
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * A schema step failed; the message says which and why (never any row data).
 */
class FormRelay_Schema_Exception extends RuntimeException {
}
