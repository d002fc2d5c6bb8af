<?php
/**
 * Helpers for tests and the demo (call them through `site.php(...)`; the
 * Python driver devstack/wpforms.py does), plus wpforms_upload_dir(), a
 * function of WPForms' own that code written for WPForms may call.
 *
 * @package WPFormsEmulator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Create a form; see WPForms_Emulator_Forms::create() for $args.
 *
 * @param array $args Title, fields, settings, status.
 *
 * @return int|WP_Error The form id.
 */
function wpforms_emulator_create_form( array $args ) {
	return WPForms_Emulator_Forms::create( $args );
}

/**
 * The emulated edition: 'pro' or 'lite'.
 */
function wpforms_emulator_mode(): string {
	return WPForms_Emulator::mode();
}

/**
 * Switch the emulated edition from the next request on.
 *
 * @param string $mode 'pro' or 'lite'.
 *
 * @return true|WP_Error
 */
function wpforms_emulator_set_mode( string $mode ) {
	if ( ! in_array( $mode, array( 'pro', 'lite' ), true ) ) {
		return new WP_Error( 'wpforms_emulator_mode', "mode must be 'pro' or 'lite', not '$mode'" );
	}
	update_option( WPForms_Emulator::MODE_OPTION, $mode );
	return true;
}

/**
 * Strict file types: uploads must pass WordPress's content check, as in WPForms.
 *
 * @param bool $strict On or off (off by default; see README.md).
 */
function wpforms_emulator_set_strict_file_types( bool $strict ): void {
	update_option( WPForms_Emulator::STRICT_FILE_TYPES_OPTION, $strict ? '1' : '0' );
}

/**
 * Set an entry's status ('' , 'spam', 'trash', 'partial', 'abandoned').
 *
 * @param int    $entry_id Entry id.
 * @param string $status   New status.
 *
 * @return true|WP_Error
 */
function wpforms_emulator_set_entry_status( int $entry_id, string $status ) {
	return WPForms_Emulator_Entries::set_status( $entry_id, $status );
}

/**
 * One stored entry (its wpforms_entries row plus 'entry_fields' rows), or null.
 *
 * @param int $entry_id Entry id.
 */
function wpforms_emulator_get_entry( int $entry_id ): ?array {
	return WPForms_Emulator_Entries::get( $entry_id );
}

/**
 * Stored entries, oldest first (of one form, or of all when $form_id is 0).
 *
 * @param int $form_id Form id or 0.
 *
 * @return array[]
 */
function wpforms_emulator_get_entries( int $form_id = 0 ): array {
	return WPForms_Emulator_Entries::all( $form_id );
}

/**
 * Delete an entry with its files, as WPForms does.
 *
 * @param int $entry_id Entry id.
 *
 * @return true|WP_Error
 */
function wpforms_emulator_delete_entry( int $entry_id ) {
	return WPForms_Emulator_Entries::delete( $entry_id );
}

if ( ! function_exists( 'wpforms_upload_dir' ) ) {
	/**
	 * WPForms' upload root: <uploads basedir>/wpforms (the filter
	 * `wpforms_upload_root` can move the disk root; URLs stay under baseurl/wpforms).
	 *
	 * @return array path, url, error.
	 */
	function wpforms_upload_dir() {
		$upload_dir = wp_upload_dir();
		if ( ! empty( $upload_dir['error'] ) ) {
			return array( 'error' => $upload_dir['error'] );
		}
		$basedir = realpath( $upload_dir['basedir'] );
		$root    = trailingslashit( false === $basedir ? $upload_dir['basedir'] : $basedir ) . 'wpforms';
		$custom  = apply_filters( 'wpforms_upload_root', $root );
		if ( is_string( $custom ) && is_dir( $custom ) && wp_is_writable( $custom ) ) {
			$root = wp_normalize_path( $custom );
		}
		return array(
			'path'  => $root,
			'url'   => trailingslashit( $upload_dir['baseurl'] ) . 'wpforms',
			'error' => false,
		);
	}
}
