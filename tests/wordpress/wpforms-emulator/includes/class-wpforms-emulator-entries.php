<?php
/**
 * Entry storage (Pro): wpforms_entries and wpforms_entry_fields, plus the
 * helpers tests use to read entries and change their status.
 *
 * @package WPFormsEmulator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Saves entries on wpforms_process_entry_save, as WPForms Pro does.
 */
final class WPForms_Emulator_Entries {

	/**
	 * Entry statuses WPForms uses: '' is a normal completed entry.
	 */
	const STATUSES = array( '', 'spam', 'trash', 'partial', 'abandoned' );

	/**
	 * Register the saver.
	 */
	public function hooks(): void {
		add_action( 'wpforms_process_entry_save', array( $this, 'save' ), 10, 4 );
	}

	/**
	 * Save the entry unless the form disables entries; sets the process's entry_id.
	 *
	 * @param array      $fields    Fields.
	 * @param array      $entry     The unslashed $_POST['wpforms'].
	 * @param int|string $form_id   Form id.
	 * @param array      $form_data Form data.
	 */
	public function save( $fields, $entry, $form_id, $form_data ): void {
		global $wpdb;

		if ( ! empty( $form_data['settings']['disable_entries'] ) ) {
			return;
		}
		$fields = apply_filters( 'wpforms_entry_save_data', $fields, $entry, $form_data );

		// phpcs:disable WordPress.Security.ValidatedSanitizedInput
		$user_agent = isset( $_SERVER['HTTP_USER_AGENT'] ) ? substr( sanitize_text_field( wp_unslash( $_SERVER['HTTP_USER_AGENT'] ) ), 0, 256 ) : '';
		$user_ip    = isset( $_SERVER['REMOTE_ADDR'] ) ? sanitize_text_field( wp_unslash( $_SERVER['REMOTE_ADDR'] ) ) : '';
		$user_uuid  = isset( $_COOKIE['_wpfuuid'] ) ? sanitize_key( wp_unslash( $_COOKIE['_wpfuuid'] ) ) : '';
		// phpcs:enable WordPress.Security.ValidatedSanitizedInput
		$date = gmdate( 'Y-m-d H:i:s' );

		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery
		$inserted = $wpdb->insert(
			$wpdb->prefix . 'wpforms_entries',
			array(
				'form_id'       => absint( $form_id ),
				'post_id'       => 0,
				'user_id'       => absint( get_current_user_id() ),
				'status'        => empty( $form_data['spam_reason'] ) ? '' : 'spam',
				'type'          => '',
				'viewed'        => 0,
				'starred'       => 0,
				'fields'        => wp_json_encode( $fields ),
				'meta'          => '',
				'date'          => $date,
				'date_modified' => $date,
				'ip_address'    => $user_ip,
				'user_agent'    => $user_agent,
				'user_uuid'     => $user_uuid,
			),
			array( '%d', '%d', '%d', '%s', '%s', '%d', '%d', '%s', '%s', '%s', '%s', '%s', '%s', '%s' )
		);
		if ( ! $inserted ) {
			return;
		}
		$entry_id = (int) $wpdb->insert_id;

		// One entry_fields row per field with a non-empty value.
		foreach ( (array) $fields as $field ) {
			$field = apply_filters( 'wpforms_entry_save_fields', $field, $form_data, $entry_id );
			if ( ! isset( $field['id'], $field['value'] ) || ( is_string( $field['value'] ) && '' === $field['value'] ) ) {
				continue;
			}
			// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery
			$wpdb->insert(
				$wpdb->prefix . 'wpforms_entry_fields',
				array(
					'entry_id' => $entry_id,
					'form_id'  => absint( $form_data['id'] ),
					'field_id' => (string) WPForms_Emulator_Fields::field_id( $field['id'] ),
					'value'    => is_scalar( $field['value'] ) ? (string) $field['value'] : wp_json_encode( $field['value'] ),
					'date'     => $date,
				),
				array( '%d', '%d', '%s', '%s', '%s' )
			);
		}
		if ( ! empty( $form_data['spam_reason'] ) ) {
			// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery
			$wpdb->insert(
				$wpdb->prefix . 'wpforms_entry_meta',
				array(
					'entry_id' => $entry_id,
					'form_id'  => absint( $form_data['id'] ),
					'user_id'  => 0,
					'status'   => '',
					'type'     => 'spam',
					'data'     => (string) $form_data['spam_reason'],
					'date'     => $date,
				),
				array( '%d', '%d', '%d', '%s', '%s', '%s', '%s' )
			);
		}

		WPForms_Emulator::instance()->process->entry_id = $entry_id;
	}

	/**
	 * One entry with its entry_fields rows, or null.
	 *
	 * @param int $entry_id Entry id.
	 */
	public static function get( int $entry_id ): ?array {
		$rows = self::query( 'WHERE entry_id = %d', array( $entry_id ) );
		return $rows ? $rows[0] : null;
	}

	/**
	 * Entries, oldest first; all forms when $form_id is 0.
	 *
	 * @param int $form_id Form id or 0.
	 *
	 * @return array[]
	 */
	public static function all( int $form_id = 0 ): array {
		return $form_id ? self::query( 'WHERE form_id = %d', array( $form_id ) ) : self::query( '', array() );
	}

	/**
	 * Rows of wpforms_entries with their entry_fields rows under 'entry_fields'.
	 *
	 * @param string $where  WHERE clause with placeholders.
	 * @param array  $params Its values.
	 *
	 * @return array[]
	 */
	private static function query( string $where, array $params ): array {
		global $wpdb;
		$entries = $wpdb->prefix . 'wpforms_entries';
		$sql     = "SELECT * FROM `$entries` $where ORDER BY entry_id";
		// phpcs:ignore WordPress.DB.PreparedSQL.NotPrepared, WordPress.DB.DirectDatabaseQuery.DirectQuery
		$rows = $wpdb->get_results( $params ? $wpdb->prepare( $sql, $params ) : $sql, ARRAY_A );
		if ( ! $rows ) {
			return array();
		}
		$ids          = implode( ',', array_map( 'absint', wp_list_pluck( $rows, 'entry_id' ) ) );
		$entry_fields = $wpdb->prefix . 'wpforms_entry_fields';
		// phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared, WordPress.DB.DirectDatabaseQuery.DirectQuery
		$field_rows = $wpdb->get_results( "SELECT * FROM `$entry_fields` WHERE entry_id IN ($ids) ORDER BY id", ARRAY_A );
		$by_entry   = array();
		foreach ( (array) $field_rows as $row ) {
			$by_entry[ $row['entry_id'] ][] = $row;
		}
		foreach ( $rows as &$row ) {
			$row['entry_fields'] = $by_entry[ $row['entry_id'] ] ?? array();
		}
		unset( $row );
		return $rows;
	}

	/**
	 * Set an entry's status (as wp-admin's "Trash" / "Mark as spam" do).
	 *
	 * @param int    $entry_id Entry id.
	 * @param string $status   One of STATUSES.
	 *
	 * @return true|WP_Error
	 */
	public static function set_status( int $entry_id, string $status ) {
		global $wpdb;
		if ( ! in_array( $status, self::STATUSES, true ) ) {
			return new WP_Error( 'wpforms_emulator_status', "unknown entry status '$status'" );
		}
		if ( ! self::get( $entry_id ) ) {
			return new WP_Error( 'wpforms_emulator_entry', "no entry $entry_id" );
		}
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery
		$wpdb->update(
			$wpdb->prefix . 'wpforms_entries',
			array(
				'status'        => $status,
				'date_modified' => gmdate( 'Y-m-d H:i:s' ),
			),
			array( 'entry_id' => $entry_id ),
			array( '%s', '%s' ),
			array( '%d' )
		);
		return true;
	}

	/**
	 * Delete an entry, its field rows, its meta and its files.
	 *
	 * @param int $entry_id Entry id.
	 *
	 * @return true|WP_Error
	 */
	public static function delete( int $entry_id ) {
		global $wpdb;
		$entry = self::get( $entry_id );
		if ( ! $entry ) {
			return new WP_Error( 'wpforms_emulator_entry', "no entry $entry_id" );
		}
		$fields = json_decode( (string) $entry['fields'], true );
		if ( is_array( $fields ) ) {
			WPForms_Emulator_Uploads::delete_files( $fields, (int) $entry['form_id'] );
		}
		foreach ( array( 'wpforms_entry_fields', 'wpforms_entry_meta', 'wpforms_entries' ) as $table ) {
			// phpcs:ignore WordPress.DB.DirectDatabaseQuery.DirectQuery
			$wpdb->delete( $wpdb->prefix . $table, array( 'entry_id' => $entry_id ), array( '%d' ) );
		}
		return true;
	}
}
