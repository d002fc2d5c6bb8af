<?php
/**
 * Uninstall FormRelay Bridge (run by WordPress when the plugin is deleted).
 *
 * The queue may hold submissions not yet delivered, and the sidecar shares
 * the tables: everything stays unless an administrator ticked "Delete the
 * FormRelay tables ... when the plugin is deleted" (remove_data_on_uninstall).
 * Then the tables are dropped, children before parents (foreign keys), and
 * the plugin's options deleted (the settings and the secret's own option), and
 * the notices' user meta.
 *
 * @package FormRelay_Bridge
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

$formrelay_settings = get_option( 'formrelay_bridge_settings' );
if ( ! is_array( $formrelay_settings ) || empty( $formrelay_settings['remove_data_on_uninstall'] ) ) {
	return;
}

global $wpdb;
foreach ( array( 'alerts', 'incidents', 'nonces', 'workers', 'counts', 'log', 'documents', 'jobs', 'meta' ) as $formrelay_table ) {
	// DDL on the plugin's own table names (prefix + a constant): nothing to prepare.
	$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}formrelay_{$formrelay_table}" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared, WordPress.DB.DirectDatabaseQuery.SchemaChange, WordPress.DB.DirectDatabaseQuery.DirectQuery, WordPress.DB.DirectDatabaseQuery.NoCaching
}
foreach ( array( 'formrelay_bridge_settings', 'formrelay_bridge_secret', 'formrelay_schema_version', 'formrelay_schema_error' ) as $formrelay_option ) {
	delete_option( $formrelay_option );
}
// The notices' per-user state: last look at the FormRelay page, dismissed incident ids.
foreach ( array( 'formrelay_last_looked', 'formrelay_dismissed_incidents' ) as $formrelay_meta_key ) {
	delete_metadata( 'user', 0, $formrelay_meta_key, '', true );
}
